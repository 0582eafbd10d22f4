"""A transport's background tasks: kept while they run, all ended on close."""

from __future__ import annotations

import asyncio

from pigeon.transport.ble.background import Background


async def test_cancel_all_ends_running_tasks_and_waits_for_them() -> None:
    background, ended = Background(), []

    async def forever(name: str) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            ended.append(name)

    async def quick() -> None:
        ended.append("quick")

    for name in ("a", "b"):
        background.spawn(forever(name))
    background.spawn(quick())
    await asyncio.sleep(0)
    assert ended == ["quick"]
    await background.cancel_all()
    assert sorted(ended) == ["a", "b", "quick"]
    await background.cancel_all()  # nothing left: returns at once
