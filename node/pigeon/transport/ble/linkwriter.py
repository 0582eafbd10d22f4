"""The writes of one link: a bounded queue written one value at a time, and a closing link
gets `DRAIN_S` to write what it already accepted. GATT writes go through a `WritePacer`, so
BlueZ's own queue never overflows; a link on an L2CAP channel has no pacer, its write waits
for the kernel's room instead (`l2cap.Channel.send`). Our links and the phone services' links
share it (`central`, `phonecentral`, `transport`); bleak stays out: the caller passes the
write and the errors that end it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from pigeon.transport.base import Broken, Busy
from pigeon.transport.ble.policy import WritePacer

_LOGGER = logging.getLogger(__name__)

LINK_QUEUE_FRAMES: Final = 64
DRAIN_S: Final = 2.0  # how long a closing link may spend writing what is already queued


class LinkWriter:
    """Writes queued values in order until one fails (then `on_failed` hears why) or it stops."""

    def __init__(
        self,
        write: Callable[[bytes], Awaitable[None]],
        failures: tuple[type[BaseException], ...],
        pacer: WritePacer | None,
        clock: Callable[[], float],
        address: str,
        on_failed: Callable[[str], None],
    ) -> None:
        self._write = write
        self._failures = failures
        self._pacer = pacer
        self._clock = clock
        self._address = address
        self._on_failed = on_failed
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(LINK_QUEUE_FRAMES)
        self._task: asyncio.Task[None] | None = None
        self.accepting = False  # offer() queues values
        self.queued_bytes = 0  # of the values offered and not yet written

    def start(self) -> None:
        """Accept values and write them from now on."""
        self.accepting = True
        self._task = asyncio.get_running_loop().create_task(self._write_forever())

    def offer(self, value: bytes) -> None:
        """Queue `value`; raises Broken if the link no longer writes, Busy if the queue is full."""
        if not self.accepting:
            raise Broken("link is down")
        try:
            self._queue.put_nowait(value)
        except asyncio.QueueFull:
            raise Busy(f"{LINK_QUEUE_FRAMES} frames already queued") from None
        self.queued_bytes += len(value)

    async def stop(self) -> None:
        """Accept nothing more, write what is queued (for up to DRAIN_S), then stop."""
        self.accepting = False
        task = self._task
        if task is None:
            return
        if not task.done():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_S):
                    await self._queue.join()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _write_forever(self) -> None:
        while True:
            value = await self._queue.get()
            try:
                if self._pacer is not None:
                    delay = self._pacer.delay_s(len(value), self._clock())
                    if delay > 0:
                        await asyncio.sleep(delay)
                    self._pacer.spend(len(value), self._clock())
                await self._write(value)
            except self._failures as exc:
                _LOGGER.warning("write to %s failed: %s", self._address, exc)
                self.accepting = False
                self._on_failed("write failed")
                return
            finally:
                self.queued_bytes -= len(value)
                self._queue.task_done()
