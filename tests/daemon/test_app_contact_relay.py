"""The owner chats with a scripted Pigeon-app peer through a real `pigeon relay` `/ws` on
loopback, both directions: the node publishes to the relay the contact's card signed and
reads the owner's app mailbox (subscribe, auth on the raw nonce, ack), as the app does."""

import asyncio
import base64
from pathlib import Path

import pytest

from pigeon.appmesh.packet import decode_packet
from pigeon.appmesh.router import AppRouter
from pigeon.crypto.signing import SigningKey
from pigeon.daemon.app_contact_relays import AppContactRelays
from pigeon.daemon.app_endpoint import AppEndpoint
from pigeon.daemon.appmesh_driver import AppMeshDriver
from pigeon.messenger.api import RefusedToSign
from pigeon.relay.app_protocol import AppEnvelope
from pigeon.transport.app_relay_mailbox import nonce_is_signable
from tests.crypto.plain_app_peer import card_text
from tests.messenger.app_peer import ACK, MESSAGE, X3DH_INIT, ScriptedAppPeer
from tests.messenger.helpers import T0, Endpoint
from tests.relay.appclient import AppClient
from tests.relay.process import launch_relay

from .conftest import wait_until


async def test_owner_and_app_peer_chat_through_a_pigeon_relay(tmp_path: Path) -> None:
    relay = await launch_relay(tmp_path / "relay", tmp_path / "relay.log")
    ws_url = relay.url.removesuffix("/v1") + "/ws"
    owner = Endpoint(tmp_path / "owner", 5)
    owner.start(T0)
    messenger = owner.messenger
    peer = next(
        p
        for p in (
            ScriptedAppPeer(bytes([n]) * 32, messenger.own_app_card_link()) for n in range(1, 64)
        )
        if p.owner < p.peer.identity_key
    )
    contact_id = messenger.add_contact(card_text(peer.peer, "Ada", [ws_url]), "", T0).id
    endpoint = AppEndpoint(messenger, AppMeshDriver(AppRouter()))
    relays = AppContactRelays(messenger, endpoint, (ws_url,), private_addresses=True)
    endpoint.set_publish(relays.publish)
    endpoint.refresh()
    running = asyncio.create_task(relays.run())
    phone = await AppClient.connect(relay.url)
    try:
        _, answer = await phone.subscribe_and_auth(SigningKey(bytes([peer_seed(peer)]) * 32))
        assert '"authenticated"' in answer
        sent = messenger.send_text(contact_id, "over the relay", T0 + 1)
        endpoint.pump()
        kinds = []
        for _ in range(2):
            frame = await phone.receive()
            assert isinstance(frame, AppEnvelope)
            kinds.append(peer.receive(decode_packet(base64.b64decode(frame.ciphertext)).payload))
        assert kinds == [X3DH_INIT, MESSAGE]
        assert peer.received[0]["text"] == "over the relay"
        # The phone publishes its ack and a reply to the owner's mailbox, as whole packets.
        for data in (peer.ack(sent.id), peer.text("back over the relay")[0]):
            await phone.publish(messenger.own_identity_key(), _packet(data))
            await phone.receive()  # published{id}
        await wait_until(lambda: messenger.message(sent.id).state == "delivered", 10.0)
        await wait_until(
            lambda: messenger.conversation(contact_id)[-1].text == "back over the relay", 10.0
        )
        frame = await phone.receive()
        assert isinstance(frame, AppEnvelope)
        assert peer.receive(decode_packet(base64.b64decode(frame.ciphertext)).payload) == ACK
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await phone.close()
        owner.close()
        relay.process.terminate()
        await relay.process.wait()


_PACKET_IDS = iter(range(1, 1_000))


def _packet(envelope: bytes) -> bytes:
    return bytes((1, 8)) + next(_PACKET_IDS).to_bytes(16, "big") + envelope


def peer_seed(peer: ScriptedAppPeer) -> int:
    for n in range(1, 64):
        if SigningKey(bytes([n]) * 32).public_key == peer.peer.identity_key:
            return n
    raise AssertionError("unknown seed")


def test_a_nonce_that_could_be_a_relay_list_is_never_signed(tmp_path: Path) -> None:
    owner = Endpoint(tmp_path / "owner", 6)
    owner.start(T0)
    try:
        url_list = b"wss://evil.example.org/ws\nwss://"[:32]
        assert len(url_list) == 32
        assert not nonce_is_signable(url_list)
        with pytest.raises(RefusedToSign):
            owner.messenger.sign_app_relay_nonce(url_list)
        assert len(owner.messenger.sign_app_relay_nonce(bytes(range(32)))) == 64
    finally:
        owner.close()


async def test_an_envelope_read_while_locked_stays_on_the_relay_until_unlock(
    tmp_path: Path,
) -> None:
    relay = await launch_relay(tmp_path / "relay", tmp_path / "relay.log")
    ws_url = relay.url.removesuffix("/v1") + "/ws"
    owner = Endpoint(tmp_path / "owner", 7)
    owner.start(T0)
    messenger = owner.messenger
    peer = next(
        p
        for p in (
            ScriptedAppPeer(bytes([n]) * 32, messenger.own_app_card_link()) for n in range(1, 64)
        )
        if p.peer.identity_key < p.owner  # the app user starts the session
    )
    contact_id = messenger.add_contact(card_text(peer.peer, "Ada", []), "", T0).id
    endpoint = AppEndpoint(messenger, AppMeshDriver(AppRouter()))
    relays = AppContactRelays(messenger, endpoint, (ws_url,), private_addresses=True)
    running = asyncio.create_task(relays.run())
    phone = await AppClient.connect(relay.url)
    try:
        await phone.publish(messenger.own_identity_key(), _packet(peer.initiate()))
        await phone.receive()
        await wait_until(lambda: relays.counters["read"] == 1, 10.0)
        owner_key = messenger.own_identity_key()
        messenger.lock(T0 + 1)
        text, _ = peer.text("sent while the node was locked")
        await phone.publish(owner_key, _packet(text))
        await phone.receive()
        await wait_until(lambda: relays.counters["read_failed"] >= 1, 10.0)
        assert relays.counters["read"] == 1  # refused, so not acknowledged: still on the relay
        owner.start(T0 + 2)  # the owner unlocks
        await wait_until(lambda: relays.counters["read"] == 2, 15.0)
        assert messenger.conversation(contact_id)[-1].text == "sent while the node was locked"
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await phone.close()
        owner.close()
        relay.process.terminate()
        await relay.process.wait()
