import sqlite3
import stat

import pytest

from bot.store import LATEST, Store, StoreError


async def test_fresh_database_jumps_to_latest_schema_and_is_private(tmp_path):
    store = await Store.open(tmp_path / "carebot.db")
    assert await store.schema_version() == LATEST
    assert stat.S_IMODE((tmp_path / "carebot.db").stat().st_mode) == 0o600
    await store.close()


async def test_newer_database_is_refused_untouched(tmp_path):
    path = tmp_path / "carebot.db"
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {LATEST + 5}")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer than this carebot"):
        await Store.open(path)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == LATEST + 5


async def test_failed_transaction_leaves_nothing(open_store):
    store = await open_store()
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.mark_processed("$e1", "!r")
            raise RuntimeError("crash between receiving and replying")
    assert not await store.is_processed("$e1")
    async with store.transaction():
        await store.mark_processed("$e1", "!r")
    assert await store.is_processed("$e1")
    await store.close()


async def test_request_decided_once(open_store):
    store = await open_store()
    async with store.transaction():
        req = await store.add_request(
            event_id="$e", room_id="!r", patient_id="pat-1", practitioner_id="dr-a",
            medication="Levothyroxine 75 µg", medication_key="levothyroxine 75 µg", status="pending",
        )
    assert req.id == 1 and req.status == "pending"
    async with store.transaction():
        assert await store.decide(req.id, "approved", "ok", "dr-a")
        assert not await store.decide(req.id, "denied", "no", "dr-a")
    final = await store.request(req.id)
    assert final is not None and final.status == "approved" and final.note == "ok"
    await store.close()


async def test_outbox_is_idempotent_by_transaction_id(open_store):
    store = await open_store()
    async with store.transaction():
        await store.enqueue("txn-1", "!r", {"body": "a"})
        await store.enqueue("txn-1", "!r", {"body": "a"})
    items = await store.outbox()
    assert [i.txn_id for i in items] == ["txn-1"]
    async with store.transaction():
        await store.sent(items[0].id)
    assert await store.outbox() == []
    await store.close()


async def test_audit_is_append_only(open_store):
    store = await open_store()
    async with store.transaction():
        await store.audit("bot", "room.created", "pat-1/dr-a")
    with pytest.raises(Exception, match="append-only"):  # sqlite3.IntegrityError / asyncpg RaiseError
        async with store.transaction():
            await store.db.execute("DELETE FROM audit")
    assert len(await store.audit_since(0)) == 1
    await store.close()


async def test_newer_postgresql_schema_is_refused_untouched(pg_url, tmp_path):
    first = await Store.for_config(tmp_path, pg_url, "carebot_x", "@carebot:test")
    await first.db.set_schema_version(LATEST + 5)
    await first.close()
    with pytest.raises(StoreError, match="newer than this carebot"):
        await Store.for_config(tmp_path, pg_url, "carebot_x", "@carebot:test")
    again = await __import__("bot.db", fromlist=["open_database"]).open_database(tmp_path, pg_url, "carebot_x")
    assert await again.schema_version() == LATEST + 5
    await again.close()


async def test_key_value_prefix_lookup_and_workflow_tables_work_on_both_stores(open_store):
    store = await open_store()
    async with store.transaction():
        await store.set("a:1", "x")
        await store.set("a:2", "y")
        await store.set("b:1", "z")
        await store.set("a:1", "x2")
        await store.save_pending_banner("!r", "first_member", {"body": "banner"})
        await store.need_reinvite("!r", "@p:x")
        await store.need_reinvite("!r", "@p:x")
        await store.mark_warned("!r", "@p:x", "DEV")
        await store.add_undecryptable("$e", "!r", 123.5, {"type": "m.room.encrypted"})
        await store.add_undecryptable("$e", "!r", 999.0, {"type": "m.room.encrypted"})
    assert await store.items("a:") == [("a:1", "x2"), ("a:2", "y")]
    assert await store.pending_banner("!r", "first_member") == {"body": "banner"}
    assert await store.needs_reinvite("!r", "@p:x") and not await store.needs_reinvite("!r", "@q:x")
    assert await store.pending_reinvites() == {("!r", "@p:x")}
    assert await store.was_warned("!r", "@p:x", "DEV")
    (waiting,) = await store.undecryptables()
    assert waiting.deadline == 123.5  # the second sighting kept the first deadline
    snap = await store.ops_snapshot()
    assert snap.undecryptable_waiting == 1 and snap.outbox_depth == 0
    await store.close()


async def test_the_in_memory_outbox_and_rooms_follow_only_what_was_committed(open_store):
    store = await open_store()
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.enqueue("txn-lost", "!r", {"body": "rolled back"})
            await store.save_room("!r", "pat-1", "dr-a")
            raise RuntimeError("crash before commit")
    assert await store.outbox() == [] and await store.room("!r") is None
    async with store.transaction():
        await store.save_room("!r", "pat-1", "dr-a")
        await store.enqueue("txn-1", "!r", {"body": "a"})
        await store.enqueue("txn-2", "!r", {"body": "b"})
    assert [i.txn_id for i in await store.outbox()] == ["txn-1", "txn-2"]
    assert [i.txn_id for i in await store.outbox(limit=1)] == ["txn-1"]
    assert (await store.room("!r")).state == "active"  # now cached
    async with store.transaction():
        await store.set_room_state("!r", "closed")
    assert (await store.room("!r")).state == "closed"  # the write replaced the cached record
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.set_room_state("!r", "active")
            raise RuntimeError("rolled back")
    assert (await store.room("!r")).state == "closed"
    first = (await store.outbox())[0]
    async with store.transaction():
        await store.sent(first.id)
    assert [i.txn_id for i in await store.outbox()] == ["txn-2"]
    await store.close()
    reopened = await open_store()  # what a restart finds: the same, read from the database
    assert [(i.txn_id, i.content) for i in await reopened.outbox()] == [("txn-2", {"body": "b"})]
    await reopened.close()


async def test_the_outbox_never_reads_a_row_of_a_transaction_that_rolls_back(open_store):
    """One connection serves every statement: a read outside the transaction lock would see
    (and the outbox would send) a reply queued by a transaction that is then cancelled."""
    import asyncio

    store = await open_store()
    try:
        reader: asyncio.Task | None = None
        with pytest.raises(asyncio.CancelledError):
            async with store.transaction():
                await store.enqueue("txn-doomed", "!r:x", {"body": "never sent"})
                reader = asyncio.create_task(store.outbox())
                for _ in range(5):  # let the reader run and queue its SELECT before the ROLLBACK
                    await asyncio.sleep(0)
                raise asyncio.CancelledError  # the bot is stopped mid-transaction
        assert reader is not None
        assert await reader == []
        assert await store.outbox() == []
    finally:
        await store.close()


async def test_the_mirrored_desk_and_absence_follow_only_what_was_committed(open_store):
    import datetime as dt

    from bot.desk.absence import Absence

    store = await open_store()
    try:
        assert await store.absence("dr-a") is None and await store.desk("dr-a") is None  # now cached
        with pytest.raises(RuntimeError):
            async with store.transaction():
                await store.set_absence(Absence("dr-a", dt.date(2026, 12, 1)))
                await store.save_desk("dr-a", desk_room_id="!desk")
                raise RuntimeError("crash before commit")
        assert await store.absence("dr-a") is None and await store.desk("dr-a") is None
        async with store.transaction():
            await store.set_absence(Absence("dr-a", dt.date(2026, 12, 1), "congrès"))
            await store.save_desk("dr-a", desk_room_id="!desk")
        assert (await store.absence("dr-a")).back_on == dt.date(2026, 12, 1)
        assert (await store.desk("dr-a")).desk_room_id == "!desk"
        async with store.transaction():
            await store.save_desk("dr-a", space_id="!space")
            assert await store.clear_absence("dr-a")
        assert await store.absence("dr-a") is None
        assert (await store.desk("dr-a")) == (await store.desk_by_room("!desk"))  # mirror = database
        assert (await store.desk("dr-a")).space_id == "!space"
    finally:
        await store.close()
