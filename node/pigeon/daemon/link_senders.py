"""One bounded frame queue and one sender task per link of a transport, for the drivers of the
phones' dialects (the Pigeon app's and bitchat's), whose routers hand out frames for links.

A batch of frames (one packet's fragments) is queued whole or not at all: a phone cannot use
part of a packet. A frame the transport calls Busy is retried a few times, then dropped;
every loss is counted in the driver's counters under `send_*`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import Final

from pigeon.transport.base import Broken, Busy, Closed, PeerId, Transport

_LOGGER = logging.getLogger(__name__)

BUSY_RETRY_S: Final = 0.05
BUSY_RETRIES: Final = 20


class LinkSenders:
    """The per-link queues and sender tasks of one driver."""

    def __init__(self, label: str, max_frames: int, counters: Counter[str]) -> None:
        self._label = label
        self._max_frames = max_frames
        self._counters = counters
        self._queues: dict[str, asyncio.Queue[bytes]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def open(self, peer: PeerId, transport: Transport) -> None:
        """Start (or restart) the queue and sender of `peer` on `transport`."""
        self.close(peer)
        queue: asyncio.Queue[bytes] = asyncio.Queue(self._max_frames)
        self._queues[peer] = queue
        self._tasks[peer] = asyncio.get_running_loop().create_task(
            self._send_loop(transport, peer, queue), name=f"{self._label}-send-{peer}"
        )

    def close(self, peer: str) -> None:
        """Drop `peer`'s queue and stop its sender."""
        self._queues.pop(peer, None)
        task = self._tasks.pop(peer, None)
        if task is not None:
            task.cancel()

    def close_all(self) -> list[str]:
        """Close every link's sender; returns the links that had one."""
        peers = list(self._tasks)
        for peer in peers:
            self.close(peer)
        return peers

    def queued(self) -> dict[str, int]:
        """Frames waiting, per link that has a sender."""
        return {peer: queue.qsize() for peer, queue in self._queues.items()}

    def offer(self, link: str, frames: list[bytes]) -> None:
        """Queue `frames` for `link`, all of them or none."""
        queue = self._queues.get(link)
        if queue is None:
            self._counters["send_without_link"] += 1
        elif queue.maxsize - queue.qsize() < len(frames):
            self._counters["send_queue_full"] += 1
        else:
            for frame in frames:
                queue.put_nowait(frame)

    async def _send_loop(
        self, transport: Transport, peer: PeerId, queue: asyncio.Queue[bytes]
    ) -> None:
        with contextlib.suppress(Closed):
            while True:
                await self._send_one(transport, peer, await queue.get())

    async def _send_one(self, transport: Transport, peer: PeerId, frame: bytes) -> None:
        for _ in range(BUSY_RETRIES):
            try:
                await transport.send(peer, frame)
            except Busy:
                await asyncio.sleep(BUSY_RETRY_S)
                continue
            except (Broken, ValueError) as exc:
                self._counters["send_failed"] += 1
                _LOGGER.debug("a frame to a %s link was not sent: %s", self._label, exc)
            return
        self._counters["send_busy"] += 1
