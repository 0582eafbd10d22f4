"""Each driver tells the transport what a received frame was worth: useful, ignored (a
duplicate) or refused (malformed), from what its router made of it."""

from __future__ import annotations

import random
import time

from pigeon.appmesh.events import LinkUp as AppLinkUp
from pigeon.appmesh.router import AppRouter
from pigeon.bitchat.events import LinkUp as BitchatLinkUp
from pigeon.bitchat.identity import BitchatIdentity
from pigeon.bitchat.router import BitchatRouter
from pigeon.daemon.appmesh_driver import AppMeshDriver
from pigeon.daemon.bitchat_driver import BitchatDriver
from pigeon.daemon.mesh_driver import MeshDriver
from pigeon.daemon.verdict import frame_verdict
from pigeon.mesh.events import LinkUp
from pigeon.mesh.fragment import fragment
from pigeon.mesh.packet import encode_packet, make_receipt
from pigeon.mesh.router import Router, RouterConfig
from pigeon.transport.base import FrameVerdict, PeerId

PEER = PeerId("ble:00000001")
JUNK = b"\xee" * 40


def test_the_worst_drop_for_the_peer_decides() -> None:
    refused, ignored = frozenset({"malformed"}), frozenset({"duplicate"})
    assert frame_verdict([], "p", refused, ignored) is FrameVerdict.USEFUL
    assert frame_verdict([("duplicate", "p")], "p", refused, ignored) is FrameVerdict.IGNORED
    both = [("duplicate", "p"), ("malformed", "p")]
    assert frame_verdict(both, "p", refused, ignored) is FrameVerdict.REFUSED
    # another link's drop says nothing about this one
    assert frame_verdict([("malformed", "q")], "p", refused, ignored) is FrameVerdict.USEFUL


async def test_the_mesh_driver_judges_fragments() -> None:
    driver = MeshDriver(Router(RouterConfig(), random.Random(1)))
    driver.feed(LinkUp(PEER, 244))
    receipt = encode_packet(make_receipt(bytes(16), bytes(16), int(time.time()) + 3600))
    (frame,) = fragment(receipt, 244, 7)
    assert driver.frame_received(PEER, frame) is FrameVerdict.USEFUL
    (again,) = fragment(receipt, 244, 8)
    assert driver.frame_received(PEER, again) is FrameVerdict.IGNORED
    assert driver.frame_received(PEER, JUNK) is FrameVerdict.REFUSED


async def test_the_app_mesh_driver_refuses_junk() -> None:
    driver = AppMeshDriver(AppRouter())
    driver.feed(AppLinkUp(PEER, 509))
    assert driver.frame_received(PEER, JUNK) is FrameVerdict.REFUSED


async def test_the_bitchat_driver_judges_packets() -> None:
    identity = BitchatIdentity.generate(random.Random(3).randbytes)
    router = BitchatRouter(identity.peer_id, random.Random(4))
    driver = BitchatDriver(router, identity, "n")
    driver.feed(BitchatLinkUp(PEER, 512))
    phone = BitchatIdentity.generate(random.Random(5).randbytes)
    announce = phone.announce("phone", int(time.time() * 1000))
    assert driver.frame_received(PEER, announce) is FrameVerdict.USEFUL
    assert driver.frame_received(PEER, announce) is FrameVerdict.IGNORED
    assert driver.frame_received(PEER, JUNK) is FrameVerdict.REFUSED
