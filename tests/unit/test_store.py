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


async def test_failed_transaction_leaves_nothing(tmp_path):
    store = await Store.open(tmp_path / "db")
    with pytest.raises(RuntimeError):
        async with store.transaction():
            await store.mark_processed("$e1", "!r")
            raise RuntimeError("crash between receiving and replying")
    assert not await store.is_processed("$e1")
    async with store.transaction():
        await store.mark_processed("$e1", "!r")
    assert await store.is_processed("$e1")
    await store.close()


async def test_request_decided_once(tmp_path):
    store = await Store.open(tmp_path / "db")
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


async def test_outbox_is_idempotent_by_transaction_id(tmp_path):
    store = await Store.open(tmp_path / "db")
    async with store.transaction():
        await store.enqueue("txn-1", "!r", {"body": "a"})
        await store.enqueue("txn-1", "!r", {"body": "a"})
    items = await store.outbox()
    assert [i.txn_id for i in items] == ["txn-1"]
    async with store.transaction():
        await store.sent(items[0].id)
    assert await store.outbox() == []
    await store.close()


async def test_audit_is_append_only(tmp_path):
    store = await Store.open(tmp_path / "db")
    async with store.transaction():
        await store.audit("bot", "room.created", "pat-1/dr-a")
    with pytest.raises(sqlite3.IntegrityError):
        async with store.transaction():
            await store._db.execute("DELETE FROM audit")
    assert len(await store.audit_since(0)) == 1
    await store.close()


async def test_the_outbox_never_reads_a_row_of_a_transaction_that_rolls_back(tmp_path):
    """One connection serves every statement: a read outside the transaction lock would see
    (and the outbox would send) a reply queued by a transaction that is then cancelled."""
    import asyncio

    store = await Store.open(tmp_path / "db")
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
