"""A dialed link's writer: order, bounds, draining on close, and the end of a failed link."""

from __future__ import annotations

import asyncio
import time

import pytest

from pigeon.transport.base import Broken, Busy
from pigeon.transport.ble.linkwriter import LINK_QUEUE_FRAMES, LinkWriter
from pigeon.transport.ble.policy import PacerParams, WritePacer

UNPACED = PacerParams(rate_bytes_s=1e9, burst_bytes=1e9)


class Radio:
    """Records writes; each waits for `gate` (open by default) and may fail."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_on: bytes | None = None

    async def write(self, value: bytes) -> None:
        await self.gate.wait()
        if value == self.fail_on:
            raise OSError("connection gone")
        self.written.append(value)


def _writer(radio: Radio, failed: list[str]) -> LinkWriter:
    pacer = WritePacer(UNPACED, time.monotonic())
    return LinkWriter(radio.write, (OSError,), pacer, time.monotonic, "AA", failed.append)


async def test_values_are_written_once_in_order_and_stop_drains_the_queue() -> None:
    radio, failed = Radio(), []
    writer = _writer(radio, failed)
    writer.start()
    values = [bytes([n]) * (n + 1) for n in range(20)]
    for value in values:
        writer.offer(value)
    await writer.stop()
    assert radio.written == values
    assert failed == []
    with pytest.raises(Broken):
        writer.offer(b"late")


async def test_a_full_queue_is_busy_and_nothing_is_queued_before_start() -> None:
    radio, failed = Radio(), []
    writer = _writer(radio, failed)
    with pytest.raises(Broken):
        writer.offer(b"early")
    radio.gate.clear()  # the radio takes nothing: the queue fills
    writer.start()
    writer.offer(b"in flight")
    await asyncio.sleep(0)  # the writer takes it and waits at the radio
    for n in range(LINK_QUEUE_FRAMES):
        writer.offer(bytes([n]))
    with pytest.raises(Busy):
        writer.offer(b"one too many")
    radio.gate.set()
    await writer.stop()
    assert len(radio.written) == 1 + LINK_QUEUE_FRAMES


async def test_a_failed_write_ends_the_link_once() -> None:
    radio, failed = Radio(), []
    radio.fail_on = b"2"
    writer = _writer(radio, failed)
    writer.start()
    for value in (b"1", b"2", b"3"):
        writer.offer(value)
    for _ in range(10):
        await asyncio.sleep(0)
    assert failed == ["write failed"]
    assert radio.written == [b"1"]
    with pytest.raises(Broken):
        writer.offer(b"4")
    await writer.stop()  # returns although values stay queued: the writer is done
    assert failed == ["write failed"]


async def test_queued_bytes_counts_what_is_offered_and_not_yet_written() -> None:
    radio, failed = Radio(), []
    radio.gate.clear()
    writer = LinkWriter(radio.write, (OSError,), None, time.monotonic, "AA", failed.append)
    writer.start()
    for size in (10, 200, 1020):
        writer.offer(bytes(size))
    assert writer.queued_bytes == 1230  # the first is in flight: still the link's to hold
    radio.gate.set()
    await writer.stop()
    assert (writer.queued_bytes, len(radio.written)) == (0, 3)
