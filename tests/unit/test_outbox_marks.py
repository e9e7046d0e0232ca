"""Sent items leave the outbox in batches: one transaction for all those sent meanwhile. Until
it commits an item is never sent again by this process; if the process dies first, the next
start sends it again under the same transaction id (which the homeserver de-duplicates).
Desk notices marked background wait while patients' replies go out."""

from __future__ import annotations

import asyncio
import sqlite3

from outbox_helpers import ScriptedOutbox, drained, queue, run, stop_outbox, until

from bot.runtime.send_slots import SendSlots
from bot.store import Store


class CountingStore(Store):
    """Counts the transactions that remove sent items; can make them fail (database locked)."""

    marks = 0
    failing = False

    async def sent_many(self, outbox_ids: list[int]) -> None:
        type(self).marks += 1
        if type(self).failing:
            raise sqlite3.OperationalError("database is locked")
        await super().sent_many(outbox_ids)


async def tried_to_remove(n: int, timeout: float = 5.0) -> None:
    """Until the outbox has tried `n` removal transactions."""

    async def wait() -> None:
        while CountingStore.marks < n:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), timeout)


async def test_a_burst_of_replies_leaves_the_outbox_in_fewer_transactions_than_replies(tmp_path):
    store = await CountingStore.open(tmp_path / "db")
    CountingStore.marks, CountingStore.failing = 0, False
    outbox = ScriptedOutbox(store)
    await queue(store, *[(f"r{n}", f"!room{n}:x") for n in range(20)])
    stop, task = await run(outbox)
    try:
        await until(outbox, lambda: len(outbox.sent) == 20)
        await drained(store)
        assert sorted(outbox.sent) == sorted(f"r{n}" for n in range(20))
        assert 1 <= CountingStore.marks < 20
    finally:
        await stop_outbox(outbox, stop, task)
        await store.close()


async def test_a_sent_item_not_yet_removed_is_never_sent_again_and_the_next_start_resends_it_with_its_txn_id(tmp_path):
    store = await CountingStore.open(tmp_path / "db")
    CountingStore.marks, CountingStore.failing = 0, True  # no removal commits
    outbox = ScriptedOutbox(store)
    await queue(store, ("a-1", "!a:x"), ("b-1", "!b:x"))
    stop, task = await run(outbox)
    try:
        await until(outbox, lambda: len(outbox.sent) == 2)
        await tried_to_remove(1)
        for _ in range(5):  # the dispatcher looks again and again while the removal fails
            outbox.wake()
            await asyncio.sleep(0)
        assert {i.txn_id for i in store.queued()} == {"a-1", "b-1"}  # not removed...
        assert sorted(outbox.sent) == ["a-1", "b-1"]  # ...and not sent a second time
        # A later reply in the same room goes out after the earlier one, once.
        await queue(store, ("a-2", "!a:x"))
        outbox.wake()
        await until(outbox, lambda: "a-2" in outbox.sent)
        assert outbox.sent == ["a-1", "b-1", "a-2"] or outbox.sent == ["b-1", "a-1", "a-2"]
        # The bot stops (or dies) here, before any removal has committed.
        await stop_outbox(outbox, stop, task)
    finally:
        await store.close()

    CountingStore.failing = False
    store = await CountingStore.open(tmp_path / "db")  # the next start
    try:
        assert [i.txn_id for i in store.queued()] == ["a-1", "b-1", "a-2"]
        again = ScriptedOutbox(store)
        stop, task = await run(again)
        await until(again, lambda: len(again.sent) == 3)
        await drained(store)
        # The same transaction ids, a room's order kept: the homeserver drops the repeats.
        assert sorted(again.sent) == ["a-1", "a-2", "b-1"] and again.sent.index("a-1") < again.sent.index("a-2")
        await stop_outbox(again, stop, task)
    finally:
        await store.close()


async def test_desk_notices_of_a_burst_wait_while_the_patients_replies_go_out(tmp_path):
    store = await Store.open(tmp_path / "db")
    outbox = ScriptedOutbox(store)
    outbox._slots = SendSlots(1)  # one message on the wire at a time: the order is the priority
    outbox.hold["!desk:x"] = asyncio.Event()
    await queue(store, ("desk-1", "!desk:x"), ("desk-2", "!desk:x"), background=True)
    await queue(store, ("reply-a", "!a:x"), ("reply-b", "!b:x"))
    stop, task = await run(outbox)
    try:
        await until(outbox, lambda: outbox.progress.is_set())  # desk-1 on the wire, the replies wait
        await asyncio.sleep(0)
        outbox.hold["!desk:x"].set()
        await until(outbox, lambda: len(outbox.sent) == 4)
        assert outbox.sent == ["desk-1", "reply-a", "reply-b", "desk-2"]
        await drained(store)
    finally:
        await stop_outbox(outbox, stop, task)
        await store.close()


async def test_the_sync_waits_for_the_messages_being_sent_but_not_for_a_hanging_room(tmp_path):
    store = await Store.open(tmp_path / "db")
    outbox = ScriptedOutbox(store)
    await asyncio.wait_for(outbox.settled(at_most=60), 1)  # nothing is being sent: at once
    outbox.hold["!a:x"] = asyncio.Event()
    await queue(store, ("a-1", "!a:x"))
    stop, task = await run(outbox)
    try:
        await until(outbox, lambda: outbox.progress.is_set())
        waiting = asyncio.create_task(outbox.settled(at_most=60))
        await asyncio.sleep(0)
        assert not waiting.done()
        outbox.hold["!a:x"].set()
        await asyncio.wait_for(waiting, 5)  # done once the room's send ended
        outbox.hold["!a:x"] = asyncio.Event()
        await queue(store, ("a-2", "!a:x"))
        outbox.wake()
        await until(outbox, lambda: outbox.progress.is_set())
        await asyncio.wait_for(outbox.settled(at_most=0.05), 5)  # a hanging room: only at_most
        assert "a-2" not in outbox.sent
        outbox.hold["!a:x"].set()
    finally:
        await stop_outbox(outbox, stop, task)
        await store.close()
