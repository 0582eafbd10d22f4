"""The conformance check every transport passes (after trio's `check_two_way_stream`).

A transport's tests give `check_transport` a factory of `TransportPair`s: two unstarted transports
that will see each other once started, over a lossless link, plus a way to make the radio (or the
peer) break that link. Each check raises `ConformanceError` (an AssertionError) naming the rule.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from pigeon.transport.base import MIN_FRAME_LIMIT, Broken, Closed, PeerId, Transport

WAIT_S: Final = 5.0  # how long a check waits for an upcall before it fails
QUIET_S: Final = 0.2  # how long a check watches for upcalls that must not come


class ConformanceError(AssertionError):
    """A transport broke one of the rules of the `Transport` protocol."""


@dataclass(frozen=True, slots=True)
class TransportPair:
    """Two unstarted transports that link to each other, and how each names the other."""

    a: Transport
    b: Transport
    a_names_b: PeerId
    b_names_a: PeerId
    break_link: Callable[[], Awaitable[None]]


PairFactory = Callable[[], Awaitable[TransportPair]]


class RecordingSink:
    """A `LinkSink` that records every upcall in order and lets a check wait for one."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, PeerId, object]] = []
        self._changed = asyncio.Event()

    def link_up(self, peer: PeerId, frame_limit: int) -> None:
        self._record("link_up", peer, frame_limit)

    def link_down(self, peer: PeerId, reason: str) -> None:
        self._record("link_down", peer, reason)

    def frame_received(self, peer: PeerId, frame: bytes) -> None:
        self._record("frame", peer, frame)

    def _record(self, kind: str, peer: PeerId, value: object) -> None:
        self.calls.append((kind, peer, value))
        self._changed.set()

    def of(self, kind: str, peer: PeerId) -> list[object]:
        """The values of every `kind` upcall about `peer`, in order."""
        return [v for k, p, v in self.calls if k == kind and p == peer]

    async def wait_for(self, kind: str, peer: PeerId, count: int, rule: str) -> list[object]:
        """Wait until `count` `kind` upcalls about `peer` arrived; raise ConformanceError."""
        try:
            async with asyncio.timeout(WAIT_S):
                while len(self.of(kind, peer)) < count:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            got = len(self.of(kind, peer))
            raise ConformanceError(f"{rule}: got {got} of {count} {kind} upcalls") from None
        return self.of(kind, peer)


async def _linked(factory: PairFactory) -> tuple[TransportPair, RecordingSink, RecordingSink]:
    pair = await factory()
    sink_a, sink_b = RecordingSink(), RecordingSink()
    try:
        await pair.a.start(sink_a)
        await pair.b.start(sink_b)
        rule = "both ends report link_up"
        await sink_a.wait_for("link_up", pair.a_names_b, 1, rule)
        await sink_b.wait_for("link_up", pair.b_names_a, 1, rule)
    except BaseException:
        await _close(pair)  # a pair left open would disturb every check after this one
        raise
    return pair, sink_a, sink_b


async def _close(pair: TransportPair) -> None:
    await pair.a.aclose()
    await pair.b.aclose()


async def check_link_up(factory: PairFactory) -> None:
    """Both ends report the link once, with a frame limit that `frame_limit` agrees with."""
    pair, sink_a, sink_b = await _linked(factory)
    try:
        for transport, sink, peer in (
            (pair.a, sink_a, pair.a_names_b),
            (pair.b, sink_b, pair.b_names_a),
        ):
            (limit,) = sink.of("link_up", peer)
            if not isinstance(limit, int) or limit < MIN_FRAME_LIMIT:
                raise ConformanceError(f"link_up frame_limit {limit!r} is below {MIN_FRAME_LIMIT}")
            if transport.frame_limit(peer) != limit:
                raise ConformanceError("frame_limit(peer) differs from the link_up frame_limit")
    finally:
        await _close(pair)


async def check_frame_delivery(factory: PairFactory) -> None:
    """Frames from 1 byte to the frame limit arrive intact and in order, both ways."""
    pair, sink_a, sink_b = await _linked(factory)
    try:
        for src, sink, to, sender_name in (
            (pair.a, sink_b, pair.a_names_b, pair.b_names_a),
            (pair.b, sink_a, pair.b_names_a, pair.a_names_b),
        ):
            limit = src.frame_limit(to)
            frames = [bytes([n % 256]) * size for n, size in enumerate((1, 2, limit // 2, limit))]
            for frame in frames:
                await src.send(to, frame)
            got = await sink.wait_for("frame", sender_name, len(frames), "frames are delivered")
            if got != frames:
                raise ConformanceError("frames arrived changed, reordered or duplicated")
    finally:
        await _close(pair)


async def check_oversized_frame(factory: PairFactory) -> None:
    """A frame one byte over the limit raises ValueError and is not delivered."""
    pair, _, sink_b = await _linked(factory)
    try:
        limit = pair.a.frame_limit(pair.a_names_b)
        try:
            await pair.a.send(pair.a_names_b, bytes(limit + 1))
        except ValueError:
            pass
        else:
            raise ConformanceError("an oversized frame did not raise ValueError")
        await asyncio.sleep(QUIET_S)
        if sink_b.of("frame", pair.b_names_a):
            raise ConformanceError("an oversized frame was delivered")
    finally:
        await _close(pair)


async def check_link_down(factory: PairFactory) -> None:
    """A broken link is reported at both ends; then send and frame_limit raise Broken."""
    pair, sink_a, sink_b = await _linked(factory)
    try:
        await pair.break_link()
        rule = "both ends report link_down"
        await sink_a.wait_for("link_down", pair.a_names_b, 1, rule)
        await sink_b.wait_for("link_down", pair.b_names_a, 1, rule)
        for transport, peer in ((pair.a, pair.a_names_b), (pair.b, pair.b_names_a)):
            await _expect(Broken, transport.send(peer, b"x"), "send after link_down")
            try:
                transport.frame_limit(peer)
            except Broken:
                pass
            else:
                raise ConformanceError("frame_limit after link_down did not raise Broken")
    finally:
        await _close(pair)


async def check_close(factory: PairFactory) -> None:
    """After aclose: send raises Closed, aclose is idempotent, the sink hears nothing more."""
    pair, sink_a, _ = await _linked(factory)
    try:
        await pair.a.aclose()
        heard = len(sink_a.calls)
        await _expect(Closed, pair.a.send(pair.a_names_b, b"x"), "send after aclose")
        await pair.a.aclose()
        with contextlib.suppress(Broken, Closed):
            await pair.b.send(pair.b_names_a, b"late")
        await asyncio.sleep(QUIET_S)
        if len(sink_a.calls) != heard:
            raise ConformanceError(f"sink called after aclose: {sink_a.calls[heard:]!r}")
    finally:
        await _close(pair)


async def _expect(error: type[Exception], call: Awaitable[None], what: str) -> None:
    try:
        await call
    except error:
        return
    except Exception as exc:
        raise ConformanceError(f"{what} raised {type(exc).__name__}, not {error.__name__}") from exc
    raise ConformanceError(f"{what} did not raise {error.__name__}")


ALL_CHECKS: Final = (
    check_link_up,
    check_frame_delivery,
    check_oversized_frame,
    check_link_down,
    check_close,
)


async def check_transport(factory: PairFactory) -> None:
    """Run every conformance check, each on a fresh pair; raise ConformanceError on the first."""
    for check in ALL_CHECKS:
        await check(factory)
