"""The owner chats with a scripted Pigeon-app phone over the simulated app mesh, both ways."""

import asyncio
import random
from pathlib import Path

from pigeon.appmesh.envelope import decode_envelope
from pigeon.appmesh.packet import decode_packet
from pigeon.appmesh.router import AppRouter
from pigeon.daemon.app_endpoint import AppEndpoint
from pigeon.daemon.appmesh_driver import AppMeshDriver
from pigeon.messenger.api import AppOutgoing
from pigeon.sim.app_phone import APP_SERVICE, PHONE_VALUE_LENGTH, AppPhone
from pigeon.transport.sim import RadioParams, SimMedium
from tests.crypto.plain_app_peer import card_text
from tests.messenger.app_peer import ACK, MESSAGE, X3DH_INIT, ScriptedAppPeer
from tests.messenger.helpers import T0, Endpoint

from .conftest import wait_until

WAIT_S = 5.0


def _payloads(phone: AppPhone, start: int) -> list[bytes]:
    return [decode_packet(packet).payload for packet in phone.inbox[start:]]


async def test_owner_and_app_phone_chat_over_the_app_mesh(tmp_path: Path) -> None:
    owner = Endpoint(tmp_path / "owner", 3)
    owner.start(T0)
    messenger = owner.messenger
    link = messenger.own_app_card_link()
    peer = next(
        p
        for p in (ScriptedAppPeer(bytes([n]) * 32, link) for n in range(1, 64))
        if p.owner < p.peer.identity_key  # the owner initiates
    )
    contact_id = messenger.add_contact(card_text(peer.peer, "Ada", []), "", T0).id
    medium = SimMedium(RadioParams(range_m=50.0), random.Random(1))
    driver = AppMeshDriver(AppRouter(), tick_s=0.05)
    published: list[AppOutgoing] = []
    endpoint = AppEndpoint(
        messenger, driver, publish=lambda item, _: published.append(item), clock=lambda: T0 + 5
    )
    endpoint.refresh()
    node = medium.transport("node", 10.0, 0.0, service=APP_SERVICE, frame_limit=509)
    phone = AppPhone(peer.peer.identity_key, random.Random(2), relays=True)
    radio = medium.transport("phone", 0.0, 0.0, service=APP_SERVICE, frame_limit=PHONE_VALUE_LENGTH)
    run = asyncio.create_task(driver.run(node))
    await phone.start(radio)
    try:
        await wait_until(lambda: bool(driver.links and phone.links))
        sent = messenger.send_text(contact_id, "hello from the node", T0 + 1)
        endpoint.pump()
        await phone.wait_for_inbox(2, WAIT_S)
        assert [peer.receive(p) for p in _payloads(phone, 0)] == [X3DH_INIT, MESSAGE]
        assert peer.received[0]["text"] == "hello from the node"
        assert published == []  # the card signed no relays
        ack = decode_envelope(peer.ack(sent.id))
        await phone.send(peer.owner, ack.payload, ack.type)
        await wait_until(lambda: messenger.message(sent.id).state == "delivered")
        reply, reply_id = peer.text("hi node")
        envelope = decode_envelope(reply)
        await phone.send(peer.owner, envelope.payload, envelope.type)
        await phone.wait_for_inbox(3, WAIT_S)
        assert [peer.receive(p) for p in _payloads(phone, 2)] == [ACK]
        assert peer.acks == [str(reply_id).upper().encode()]
        assert messenger.conversation(contact_id)[-1].text == "hi node"
        assert driver.router.counters["delivered_local"] == 2
        assert driver.router.counters["originated"] == 3
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await phone.aclose()
        owner.close()


def test_a_packet_is_taken_once_and_only_when_stored(tmp_path: Path) -> None:
    owner = Endpoint(tmp_path / "owner", 4)
    owner.start(T0)
    messenger = owner.messenger
    link = messenger.own_app_card_link()
    peer = next(
        p
        for p in (ScriptedAppPeer(bytes([n]) * 32, link) for n in range(1, 64))
        if p.peer.identity_key < p.owner  # the app user initiates
    )
    contact_id = messenger.add_contact(card_text(peer.peer, "Ada", []), "", T0).id
    endpoint = AppEndpoint(messenger, AppMeshDriver(AppRouter()), clock=lambda: T0 + 5)
    try:
        init = _packet(1, peer.initiate())
        assert endpoint.deliver(init)
        assert endpoint.deliver(init)  # the same packet by another path: consumed unread
        assert messenger.stats["app_duplicate_packet"] == 1
        assert messenger.stats["app_init_repeated"] == 0  # Olm never saw it again
        text = _packet(2, peer.text("while locked")[0])
        messenger.lock(T0 + 6)
        assert not endpoint.deliver(text)  # left where it came from, not remembered
        owner.start(T0 + 7)
        assert endpoint.deliver(text)
        assert messenger.conversation(contact_id)[-1].text == "while locked"
        assert endpoint.deliver(text)
        assert messenger.stats["app_duplicate_packet"] == 2
        assert messenger.stats["app_undecryptable"] == 0
    finally:
        owner.close()


def _packet(number: int, envelope: bytes) -> bytes:
    """A whole app mesh packet as the app makes it: version 1, TTL 8, a 16-byte id."""
    return bytes((1, 8)) + number.to_bytes(16, "big") + envelope
