"""The outbox sends each room's replies in order, rooms independently: a room whose send
hangs or fails holds up no other room, and a reply queued while its room is sending follows
the earlier ones."""

from __future__ import annotations

import asyncio

from bot.runtime.outbox import Outbox
from bot.store import OutboxItem, Store


class ScriptedOutbox(Outbox):
    """The real run loop; sends are scripted per room (hang until released, or fail)."""

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


async def queue(store: Store, *items: tuple[str, str]) -> None:
    async with store.transaction():
        for txn, room in items:
            await store.enqueue(txn, room, {"body": txn})


async def until(outbox: ScriptedOutbox, done, timeout: float = 5.0) -> None:
    async def wait() -> None:
        while not done():
            outbox.progress.clear()
            await outbox.progress.wait()

    await asyncio.wait_for(wait(), timeout)


async def drained(store: Store, timeout: float = 5.0) -> None:
    """Until every sent item is also removed from the outbox (it is, once its send returns)."""

    async def wait() -> None:
        while await store.outbox():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), timeout)


async def run(outbox: ScriptedOutbox) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    return stop, asyncio.create_task(outbox.run(stop))


async def test_a_room_whose_send_hangs_holds_up_no_other_room(tmp_path):
    store = await Store.open(tmp_path / "db")
    outbox = ScriptedOutbox(store)
    outbox.hold["!slow:x"] = asyncio.Event()
    await queue(store, ("slow-1", "!slow:x"), ("fast-1", "!fast:x"))
    stop, task = await run(outbox)
    try:
        await until(outbox, lambda: "fast-1" in outbox.sent)
        await queue(store, ("fast-2", "!fast:x"))  # queued later, while !slow still hangs
        outbox.wake()
        await until(outbox, lambda: "fast-2" in outbox.sent)
        assert "slow-1" not in outbox.sent
        outbox.hold["!slow:x"].set()
        await until(outbox, lambda: "slow-1" in outbox.sent)
        await drained(store)
    finally:
        stop.set()
        outbox.wake()
        await asyncio.wait_for(task, 5)
        await store.close()


async def test_a_failing_room_keeps_its_replies_in_order_and_others_go_out(tmp_path):
    store = await Store.open(tmp_path / "db")
    outbox = ScriptedOutbox(store)
    outbox.failing.add("!down:x")
    await queue(store, ("down-1", "!down:x"), ("down-2", "!down:x"), ("ok-1", "!ok:x"))
    stop, task = await run(outbox)
    try:
        await until(outbox, lambda: "ok-1" in outbox.sent and outbox.attempts.get("down-1", 0) >= 2)
        assert "down-2" not in outbox.attempts  # never overtakes the reply before it
        outbox.failing.clear()
        outbox.wake()
        await until(outbox, lambda: "down-2" in outbox.sent, timeout=15)
        assert [t for t in outbox.sent if t.startswith("down")] == ["down-1", "down-2"]
        await drained(store)
    finally:
        stop.set()
        outbox.wake()
        await asyncio.wait_for(task, 5)
        await store.close()


async def test_a_reply_queued_while_its_room_is_sending_goes_out_after_the_earlier_one(tmp_path):
    store = await Store.open(tmp_path / "db")
    outbox = ScriptedOutbox(store)
    outbox.hold["!r:x"] = asyncio.Event()
    await queue(store, ("r-1", "!r:x"))
    stop, task = await run(outbox)
    try:
        await until(outbox, lambda: outbox.attempts.get("r-1") == 1)
        await queue(store, ("r-2", "!r:x"))
        outbox.wake()
        outbox.hold["!r:x"].set()
        await until(outbox, lambda: len(outbox.sent) == 2)
        assert outbox.sent == ["r-1", "r-2"] and outbox.attempts == {"r-1": 1, "r-2": 1}
    finally:
        stop.set()
        outbox.wake()
        await asyncio.wait_for(task, 5)
        await store.close()
