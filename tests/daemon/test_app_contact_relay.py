"""The owner chats with a scripted Pigeon-app peer through a real `pigeon relay` `/ws` on
loopback, both directions: the node publishes to the relay the contact's card signed and
reads the owner's app mailbox (subscribe, auth on the raw nonce, ack), as the app does."""

import asyncio
import base64
from pathlib import Path

import aiohttp
import pytest

from pigeon.appmesh.packet import decode_packet
from pigeon.appmesh.router import AppRouter
from pigeon.crypto.signing import SigningKey
from pigeon.daemon.app_endpoint import AppEndpoint
from pigeon.daemon.appmesh_driver import AppMeshDriver
from pigeon.messenger.api import AppOutgoing, RefusedToSign
from pigeon.relay.app_protocol import AppEnvelope
from pigeon.transport.app_relay_client import AppRelayPublisher
from pigeon.transport.app_relay_mailbox import AppMailboxReader, nonce_is_signable
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
    session = aiohttp.ClientSession()
    publisher = AppRelayPublisher(ws_url, session)
    published: list[asyncio.Task[str]] = []

    def publish(item: AppOutgoing, packet: bytes) -> None:
        assert item.relay_urls == (ws_url,)
        published.append(asyncio.ensure_future(publisher.publish(item.recipient, packet)))

    endpoint = AppEndpoint(messenger, AppMeshDriver(AppRouter()), publish=publish)
    endpoint.refresh()

    async def store(packet: bytes) -> None:
        endpoint.deliver(packet)

    reader = AppMailboxReader(ws_url, session, messenger.own_identity_key())
    reading = asyncio.create_task(reader.run(messenger.sign_app_relay_nonce, store))
    phone = await AppClient.connect(relay.url)
    try:
        _, answer = await phone.subscribe_and_auth(SigningKey(bytes([peer_seed(peer)]) * 32))
        assert '"authenticated"' in answer
        sent = messenger.send_text(contact_id, "over the relay", T0 + 1)
        endpoint.pump()
        await asyncio.gather(*published)
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
        await asyncio.gather(*published)
        frame = await phone.receive()
        assert isinstance(frame, AppEnvelope)
        assert peer.receive(decode_packet(base64.b64decode(frame.ciphertext)).payload) == ACK
    finally:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        await phone.close()
        await publisher.aclose()
        await session.close()
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
