"""The outbox sends each room's replies in order, rooms independently: a room whose send
hangs or fails holds up no other room, and a reply queued while its room is sending follows
the earlier ones."""

from __future__ import annotations

import asyncio

from outbox_helpers import ScriptedOutbox, drained, queue, run, stop_outbox, until

from bot.store import Store


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
        await stop_outbox(outbox, stop, task)
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
        await stop_outbox(outbox, stop, task)
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
        await stop_outbox(outbox, stop, task)
        await store.close()
