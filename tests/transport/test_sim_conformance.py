"""The simulated radio's asyncio transport passes the transport conformance check."""

import asyncio
import random
from collections.abc import Awaitable, Callable

import pytest

from pigeon.transport import conformance
from pigeon.transport.base import Closed, PeerId
from pigeon.transport.sim import RadioParams, SimMedium, SimTransport


def _factory(kind: type[SimTransport] = SimTransport) -> conformance.PairFactory:
    async def make_pair() -> conformance.TransportPair:
        medium = SimMedium(RadioParams(latency_s=0.001), random.Random(1))
        a = kind(medium, PeerId("a"), 0.0, 0.0, None)
        b = SimTransport(medium, PeerId("b"), 10.0, 0.0, None)

        async def break_link() -> None:
            medium.radio.move_node(PeerId("b"), 500.0, 0.0)
            medium.wake()

        return conformance.TransportPair(a, b, PeerId("b"), PeerId("a"), break_link)

    return make_pair


Check = Callable[[conformance.PairFactory], Awaitable[None]]


@pytest.mark.parametrize("check", conformance.ALL_CHECKS, ids=lambda c: c.__name__)
async def test_sim_transport_conforms(check: Check) -> None:
    await check(_factory())


async def test_check_transport_runs_every_check() -> None:
    await conformance.check_transport(_factory())


class _TruncatingTransport(SimTransport):
    async def send(self, peer: PeerId, frame: bytes) -> None:
        await super().send(peer, frame[: self.frame_limit(peer)])


class _ChattyTransport(SimTransport):
    async def aclose(self) -> None:
        sink = self._sink
        await super().aclose()
        if sink is not None:
            asyncio.get_running_loop().call_later(0.05, sink.link_down, PeerId("b"), "late")


async def test_the_check_catches_a_transport_that_accepts_oversized_frames() -> None:
    with pytest.raises(conformance.ConformanceError, match="ValueError"):
        await conformance.check_oversized_frame(_factory(_TruncatingTransport))


async def test_the_check_catches_sink_calls_after_aclose() -> None:
    with pytest.raises(conformance.ConformanceError, match="after aclose"):
        await conformance.check_close(_factory(_ChattyTransport))


async def test_a_pair_that_never_links_is_closed_by_the_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(conformance, "WAIT_S", 0.2)
    pairs: list[conformance.TransportPair] = []

    async def out_of_range() -> conformance.TransportPair:
        medium = SimMedium(RadioParams(latency_s=0.001), random.Random(1))
        a = SimTransport(medium, PeerId("a"), 0.0, 0.0, None)
        b = SimTransport(medium, PeerId("b"), 500.0, 0.0, None)

        async def break_link() -> None:
            pass

        pairs.append(conformance.TransportPair(a, b, PeerId("b"), PeerId("a"), break_link))
        return pairs[-1]

    with pytest.raises(conformance.ConformanceError, match="link_up"):
        await conformance.check_link_up(out_of_range)
    (pair,) = pairs
    # A pair left open would keep its radio (a BLE scan, a registration) busy for later checks.
    for transport in (pair.a, pair.b):
        with pytest.raises(Closed):
            transport.frame_limit(PeerId("x"))
