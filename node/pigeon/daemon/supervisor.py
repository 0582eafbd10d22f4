"""Keeps the node's parts running: a failing part is restarted with backoff, or stops the node.

A part is a named coroutine function that runs until cancelled. When it raises, a restartable
part is started again after `base_s`, then twice as long, up to `max_s`; a run that lasted
`stable_s` or longer forgets earlier failures. After `max_failures` failures in a row, or at
once for a part marked `restart=False`, `supervise` raises `PartFailed` naming the part and the
cause, which stops the node with that reason (and systemd restarts the whole service). A part
that returns is finished and not restarted. `paused(names)` stops parts for a while (the
identity reset swaps what they hold) and starts them again; that is no failure. The clock and
the sleep are injected for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Final

_LOGGER = logging.getLogger(__name__)

MAX_REASON_CHARS: Final = 160


class PartFailed(Exception):
    """A part failed for good; the node stops with `reason`."""

    def __init__(self, part: str, reason: str) -> None:
        super().__init__(f"{part}: {reason}")
        self.part = part
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """Backoff between restarts and when to give up."""

    base_s: float = 1.0
    max_s: float = 60.0
    stable_s: float = 60.0
    max_failures: int = 8

    def delay_s(self, failures: int) -> float:
        """The wait before restart number `failures` (1 for the first)."""
        return float(min(self.max_s, self.base_s * 2 ** min(failures - 1, 32)))


@dataclass(frozen=True, slots=True)
class Part:
    """A named job of the node; `run` is started again after a failure when `restart`."""

    name: str
    run: Callable[[], Awaitable[None]]
    restart: bool = True


class PartState(enum.Enum):
    """Where a part is in its life."""

    STARTING = "starting"
    RUNNING = "running"
    BACKING_OFF = "backing off"
    PAUSED = "paused"
    FINISHED = "finished"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class PartStatus:
    """A part's state, its failures in a row and the last failure (a short text, no secrets)."""

    state: PartState
    failures: int = 0
    last_error: str | None = None


class Supervisor:
    """Runs parts under the restart policy and records their status."""

    def __init__(
        self,
        policy: RestartPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.policy = policy or RestartPolicy()
        self._clock = clock
        self._sleep = sleep
        self._status: dict[str, PartStatus] = {}
        self._running: dict[str, asyncio.Future[None]] = {}
        self._paused: dict[str, asyncio.Event] = {}  # set when the part may run again
        self._stopping: set[asyncio.Future[None]] = set()  # runs cancelled by `paused`

    def status(self) -> dict[str, PartStatus]:
        """Every supervised part's status, in the order they were started."""
        return dict(self._status)

    async def supervise(self, part: Part) -> None:
        """Run `part` until it returns or is cancelled; raises PartFailed when it gives up."""
        policy = self.policy
        failures = 0
        self._status[part.name] = PartStatus(PartState.STARTING)
        while True:
            await self._wait_while_paused(part.name, failures)
            started = self._clock()
            self._status[part.name] = PartStatus(PartState.RUNNING, failures)
            try:
                stopped_for_pause = await self._run_once(part)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a supervisor's job is to outlive any failure of a part
                reason = describe(exc)
                if self._clock() - started >= policy.stable_s:
                    failures = 0
                failures += 1
                if not part.restart or failures >= policy.max_failures:
                    self._status[part.name] = PartStatus(PartState.FAILED, failures, reason)
                    _LOGGER.error("%s failed (%s); stopping the node", part.name, reason)
                    raise PartFailed(part.name, reason) from exc
                delay = policy.delay_s(failures)
                self._status[part.name] = PartStatus(PartState.BACKING_OFF, failures, reason)
                _LOGGER.warning(
                    "%s failed (%s); restart %d in %.1f s",
                    part.name,
                    reason,
                    failures,
                    delay,
                    exc_info=_LOGGER.isEnabledFor(logging.DEBUG),
                )
                await self._sleep(delay)
            else:
                if stopped_for_pause:
                    continue  # it runs again when the pause ends
                self._status[part.name] = PartStatus(PartState.FINISHED, failures)
                _LOGGER.info("%s finished", part.name)
                return

    @contextlib.asynccontextmanager
    async def paused(self, *names: str) -> AsyncIterator[None]:
        """Stop the named parts (cancelled, which is no failure) for the body of an `async
        with`, then start them again; a part that is not running yet waits until then."""
        events = {
            name: asyncio.Event() for name in dict.fromkeys(names) if name not in self._paused
        }
        self._paused.update(events)
        try:
            for name in events:
                running = self._running.get(name)
                if running is not None:
                    self._stopping.add(running)
                    running.cancel()
                    await asyncio.wait([running])
                    _LOGGER.info("%s paused", name)
            yield
        finally:
            for name, event in events.items():
                del self._paused[name]
                event.set()

    async def _wait_while_paused(self, name: str, failures: int) -> None:
        event = self._paused.get(name)
        if event is not None:
            self._status[name] = PartStatus(PartState.PAUSED, failures)
            await event.wait()
            _LOGGER.info("%s starts again after a pause", name)

    async def _run_once(self, part: Part) -> bool:
        """One run of `part`; True if `paused` stopped it."""
        # A task of its own, so that `paused` can stop this run without stopping `supervise`.
        running = asyncio.ensure_future(part.run())
        self._running[part.name] = running
        try:
            await running
        except (asyncio.CancelledError, Exception):
            current = asyncio.current_task()
            if running not in self._stopping or current is None or current.cancelling():
                raise
        finally:
            self._running.pop(part.name, None)
            stopped = running in self._stopping
            self._stopping.discard(running)
        return stopped


def describe(exc: BaseException) -> str:
    """A short one-line description of `exc` for logs and STATUS (type and message)."""
    text = " ".join(str(exc).split())
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return line[:MAX_REASON_CHARS]
