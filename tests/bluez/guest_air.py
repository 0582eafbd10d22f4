"""Runs inside the BlueZ VM (guest_ble.py): the air one link's frames cost, on a channel and over
GATT (issue #19, "one link's frames to one link").

A hub node on hci3 that the nodes on hci0, hci1 and hci2 dial (its identifier is the highest,
and the lower one dials; one that is slow to may be dialed by the hub instead) sends
PAYLOAD_BYTES to one node that dialed it. The hub's controller counts the bytes its host sent it
(the kernel's HCI device statistics): over GATT the hub, a peripheral, notifies every central
that dialed it, and each drops what is not addressed to it; on a channel each frame goes on its
own link. Reported in ble.json as `air_per_link`; the step fails if the links do not come up,
the frames do not all arrive, or a channel costs more than one link's air (`guest_ble.air_step`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import random
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from pigeon.transport.ble.transport import BleConfig, BleTransport, peer_id
from tests.bluez.guest_fairness import BULK_MARK, LeafSink, send_past_busy
from tests.bluez.rig_gatt import until

LINK_WAIT_S = 120.0
PAYLOAD_BYTES = 60_000  # about 4 s of a paced GATT link
ARRIVAL_WAIT_S = 60.0
# <linux/hci.h> (not in Python's socket module): the HCIGETDEVINFO ioctl and where the bytes
# sent to the controller (stat.byte_tx) sit in struct hci_dev_info.
HCIGETDEVINFO = 0x800448D3
DEV_INFO_LEN = 92
BYTE_TX_OFFSET = 88


def host_bytes_sent(dev_id: int) -> int:
    """What the host has sent controller hciN so far: commands and ACL data, headers included."""
    with socket.socket(socket.AF_BLUETOOTH, socket.SOCK_RAW, socket.BTPROTO_HCI) as sock:
        info = bytearray(struct.pack("<H", dev_id) + bytes(DEV_INFO_LEN - 2))
        fcntl.ioctl(sock.fileno(), HCIGETDEVINFO, info)
    (sent,) = struct.unpack_from("<I", info, BYTE_TX_OFFSET)
    return int(sent)


def _leaf(n: int, channels: bool) -> BleTransport:
    return BleTransport(BleConfig(adapter=f"hci{n}", channels=channels), rng=random.Random(40 + n))


def _hub(channels: bool) -> BleTransport:
    """A hub whose identifier is above every leaf's, so that all of them dial it."""
    highest = max(_leaf(n, channels).identifier() for n in range(3))
    config = BleConfig(adapter="hci3", max_links=4, channels=channels)
    for seed in range(100, 1000):
        hub = BleTransport(config, rng=random.Random(seed))
        if hub.identifier() > highest:
            return hub
    raise AssertionError("no seed gives the hub the highest identifier")


async def _one_carrier(channels: bool) -> dict[str, Any]:
    hub = _hub(channels)
    leaves = [_leaf(n, channels) for n in range(3)]
    hub_sink, sinks = LeafSink(), [LeafSink() for _ in leaves]
    started: list[BleTransport] = []
    try:
        for transport, sink in ((hub, hub_sink), *zip(leaves, sinks, strict=True)):
            await transport.start(sink)
            started.append(transport)
        to = [peer_id(leaf.identifier()) for leaf in leaves]
        await until(
            hub_sink.changed,
            lambda: all(peer in hub_sink.links for peer in to),
            LINK_WAIT_S,
            f"the hub linked to {sorted(hub_sink.links)}, not to all of {to}",
        )
        links = [state for state in hub.links() if state.peer in to]
        # Over GATT only a peripheral's notifications go to every subscribed central: the hub
        # sends to a leaf that dialed it (all of them do, but a slow one may be dialed instead).
        dialed_us = [state.peer for state in links if state.role == "peripheral"]
        target = dialed_us[0] if dialed_us else to[0]
        sink = sinks[to.index(target)]
        carriers = sorted({state.carrier for state in links})
        size = hub.frame_limit(target)
        frames = -(-PAYLOAD_BYTES // size)
        await asyncio.sleep(1.0)  # what the link-ups still sent has left
        before = host_bytes_sent(3)
        for n in range(frames):
            await send_past_busy(hub, target, bytes([BULK_MARK]) + n.to_bytes(4) + bytes(size - 5))
        await until(
            sink.changed,
            lambda: sink.bulk_bytes >= frames * size,
            ARRIVAL_WAIT_S,
            lambda: f"{sink.bulk_bytes} of {frames * size} bytes arrived",
        )
        sent = host_bytes_sent(3) - before
    finally:
        for transport in started:
            await transport.aclose()
    return {
        "leaves_that_dialed_the_hub": len(dialed_us),
        "carriers": carriers,
        "frame_bytes": size,
        "payload_bytes": frames * size,
        "hub_host_bytes_sent": sent,
        "sent_per_payload_byte": round(sent / (frames * size), 3),
    }


async def air_per_link(forget_devices: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    """The step's body: both carriers, each with three centrals linked to the hub."""
    report: dict[str, Any] = {}
    for name, channels in (("l2cap", True), ("gatt", False)):
        await forget_devices()
        report[name] = await _one_carrier(channels)
    with contextlib.suppress(ZeroDivisionError):
        report["gatt_over_l2cap"] = round(
            report["gatt"]["sent_per_payload_byte"] / report["l2cap"]["sent_per_payload_byte"], 2
        )
    return report
