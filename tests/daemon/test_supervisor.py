"""The supervisor: restarts with backoff on an injected clock, gives up with the part's reason."""

from __future__ import annotations

import asyncio

import pytest

from pigeon.daemon.supervisor import (
    Part,
    PartFailed,
    PartState,
    RestartPolicy,
    Supervisor,
    describe,
)


class FakeTime:
    """A clock that only moves when the supervisor sleeps (or a part says so)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make(policy: RestartPolicy) -> tuple[Supervisor, FakeTime]:
    fake = FakeTime()
    return Supervisor(policy, clock=fake.clock, sleep=fake.sleep), fake


async def test_a_crashing_part_is_restarted_with_doubling_backoff_then_recovers() -> None:
    supervisor, fake = make(RestartPolicy(base_s=1.0, max_s=5.0, max_failures=10))
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs <= 5:
            raise OSError("radio gone")

    await supervisor.supervise(Part("radio", flaky))
    assert runs == 6
    assert fake.sleeps == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert supervisor.status()["radio"].state is PartState.FINISHED


async def test_gives_up_after_max_failures_with_the_reason() -> None:
    supervisor, fake = make(RestartPolicy(base_s=0.5, max_s=60.0, max_failures=3))

    async def broken() -> None:
        raise RuntimeError("no adapter hci0")

    with pytest.raises(PartFailed) as caught:
        await supervisor.supervise(Part("radio", broken))
    assert caught.value.part == "radio"
    assert caught.value.reason == "RuntimeError: no adapter hci0"
    assert fake.sleeps == [0.5, 1.0]
    status = supervisor.status()["radio"]
    assert status.state is PartState.FAILED
    assert status.failures == 3


async def test_a_stable_run_forgets_earlier_failures() -> None:
    supervisor, fake = make(RestartPolicy(base_s=1.0, max_s=60.0, stable_s=30.0, max_failures=3))
    durations = iter([0.0, 0.0, 100.0, 0.0, 0.0, 0.0])

    async def sometimes_long() -> None:
        fake.now += next(durations)
        raise OSError("link lost")

    with pytest.raises(PartFailed):
        await supervisor.supervise(Part("relays", sometimes_long))
    # Two quick failures, a long run (counter back to 1), then two more quick ones: 5 runs.
    assert fake.sleeps == [1.0, 2.0, 1.0, 2.0]


async def test_a_part_without_restart_stops_at_once() -> None:
    supervisor, fake = make(RestartPolicy())

    async def fatal() -> None:
        raise ValueError("bad certificate")

    with pytest.raises(PartFailed, match="web: ValueError: bad certificate"):
        await supervisor.supervise(Part("web", fatal, restart=False))
    assert fake.sleeps == []


async def test_cancellation_passes_through() -> None:
    supervisor = Supervisor()
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(supervisor.supervise(Part("oled", forever)))
    await started.wait()
    assert supervisor.status()["oled"].state is PartState.RUNNING
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_backoff_delays_are_capped() -> None:
    policy = RestartPolicy(base_s=1.0, max_s=60.0)
    assert [policy.delay_s(n) for n in (1, 2, 3, 7, 8, 100)] == [1, 2, 4, 60, 60, 60]


def test_describe_is_one_short_line() -> None:
    text = describe(OSError("a\nb   c" + "x" * 500))
    assert "\n" not in text
    assert text.startswith("OSError: a b c")
    assert len(text) <= 160
    assert describe(KeyError()) == "KeyError"


async def test_cancelling_waits_for_the_part_to_clean_up() -> None:
    supervisor = Supervisor()
    started, cleaned = asyncio.Event(), []

    async def tidy() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # cleanup that itself awaits
            cleaned.append(True)

    task = asyncio.create_task(supervisor.supervise(Part("radio", tidy)))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == [True]


async def test_a_paused_part_stops_for_the_body_then_runs_again_without_a_failure() -> None:
    supervisor, fake = make(RestartPolicy())
    runs: list[str] = []
    started = asyncio.Event()

    async def holder() -> None:
        runs.append("start")
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            runs.append("stop")

    task = asyncio.create_task(supervisor.supervise(Part("messenger", holder)))
    await started.wait()
    started.clear()
    async with supervisor.paused("messenger", "not-running"):
        assert runs == ["start", "stop"]  # stopped before the body runs
        await asyncio.sleep(0.01)
        assert supervisor.status()["messenger"].state is PartState.PAUSED
        assert runs == ["start", "stop"]
    await asyncio.wait_for(started.wait(), 1)
    assert runs == ["start", "stop", "start"]
    status = supervisor.status()["messenger"]
    assert status.state is PartState.RUNNING
    assert status.failures == 0
    assert fake.sleeps == []
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_part_that_starts_during_a_pause_waits_for_its_end() -> None:
    supervisor = Supervisor()
    runs = 0

    async def once() -> None:
        nonlocal runs
        runs += 1

    async with supervisor.paused("relays"):
        task = asyncio.create_task(supervisor.supervise(Part("relays", once)))
        await asyncio.sleep(0.01)
        assert runs == 0
        assert supervisor.status()["relays"].state is PartState.PAUSED
    await asyncio.wait_for(task, 1)
    assert runs == 1
    assert supervisor.status()["relays"].state is PartState.FINISHED
