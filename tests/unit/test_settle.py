"""A reconciliation that fails part-way returns only once every room creation it started has
ended: one still in flight would otherwise race the retry and make a second room."""

from __future__ import annotations

import asyncio

import pytest

from bot.runtime.shared import settle


async def test_settle_waits_for_every_task_then_raises_the_first_error():
    slow_done = asyncio.Event()
    release = asyncio.Event()

    async def fails() -> None:
        raise TimeoutError("createRoom timed out")

    async def slow() -> None:
        await release.wait()
        slow_done.set()

    async def fails_later() -> None:
        await release.wait()
        raise ValueError("second")

    task = asyncio.create_task(settle([fails(), slow(), fails_later()]))
    for _ in range(10):  # the first error has surfaced by then
        await asyncio.sleep(0)
    assert not task.done()  # the first error does not end it while others still run
    release.set()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(task, 5)
    assert slow_done.is_set()
