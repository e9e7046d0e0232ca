"""The outbox under test: its real run loop, dispatch and marking, with sends scripted per room
(held until released, or failing), and the helpers its tests share."""

from __future__ import annotations

import asyncio

from bot.runtime.outbox import Outbox
from bot.runtime.shared import BACKGROUND
from bot.store import OutboxItem, Store


class ScriptedOutbox(Outbox):
    def __init__(self, store: Store) -> None:
        super().__init__(None, store, None, tofu=True, on_unsigned=None)  # type: ignore[arg-type]
        self.sent: list[str] = []
        self.hold: dict[str, asyncio.Event] = {}
        self.failing: set[str] = set()
        self.attempts: dict[str, int] = {}
        self.progress = asyncio.Event()

    async def send_item(self, item: OutboxItem) -> str | None:
        self.attempts[item.txn_id] = self.attempts.get(item.txn_id, 0) + 1
        self.progress.set()
        if item.room_id in self.hold:
            await self.hold[item.room_id].wait()
        if item.room_id in self.failing:
            return None
        self.sent.append(item.txn_id)
        self.progress.set()
        return "$" + item.txn_id


async def queue(store: Store, *items: tuple[str, str], background: bool = False) -> None:
    """(transaction id, room id) items queued in one transaction; `background`: desk notices."""
    async with store.transaction():
        for txn, room in items:
            await store.enqueue(txn, room, {"body": txn, **({BACKGROUND: True} if background else {})})


async def until(outbox: ScriptedOutbox, done, timeout: float = 5.0) -> None:
    async def wait() -> None:
        while not done():
            outbox.progress.clear()
            await outbox.progress.wait()

    await asyncio.wait_for(wait(), timeout)


async def drained(store: Store, timeout: float = 5.0) -> None:
    """Until every sent item is also removed from the outbox table."""

    async def wait() -> None:
        while await store.outbox():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), timeout)


async def run(outbox: Outbox) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    return stop, asyncio.create_task(outbox.run(stop))


async def stop_outbox(outbox: Outbox, stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    outbox.wake()
    await asyncio.wait_for(task, 5)
