"""A database written by release 1 (schema v1, workflows as prefixed `kv` rows) opens and works."""

import shutil
import sqlite3
from pathlib import Path

from bot.store import LATEST, Store

FIXTURE = Path(__file__).parent / "fixtures" / "v1_carebot.db"  # see fixtures/make_v1_db.py
ROOM = "!roomA:localhost:8008"
ROOM2 = "!roomB:localhost:8008"
PAT = "@pat:localhost:8008"


async def _open_v1(tmp_path: Path) -> Store:
    path = tmp_path / "carebot.db"
    shutil.copy(FIXTURE, path)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 1
    return await Store.open(path)


async def test_release_1_database_migrates_and_moves_every_workflow_row(tmp_path):
    store = await _open_v1(tmp_path)
    assert await store.schema_version() == LATEST
    # Only the bookkeeping stays in kv; everything else is in its table.
    assert await store.items("") == [("sync_token", "s42_0")]
    banner = await store.pending_banner(ROOM2, "first_member")
    assert banner is not None and banner["carebot.disclaimer"] is True and banner["_carebot_pin"] is True
    assert await store.pending_banner(ROOM, "patient") == banner
    assert await store.pending_banner(ROOM, "first_member") is None
    assert await store.needs_reinvite(ROOM, PAT)
    assert not await store.needs_reinvite(ROOM2, PAT)
    assert await store.was_warned(ROOM, PAT, "ABCDEFGHIJ")
    assert not await store.was_warned(ROOM, PAT, "OTHERDEVICE")
    [utd] = await store.undecryptables()
    assert (utd.event_id, utd.room_id, utd.deadline) == ("$evt1", ROOM, 1790000000.5)
    assert utd.source["type"] == "m.room.encrypted" and utd.source["sender"] == PAT
    # Rows that were never workflow state are untouched.
    assert [r.room_id for r in await store.rooms()] == [ROOM, ROOM2]
    assert await store.is_processed("$old")
    assert [a["action"] for a in await store.audit_since(0)] == ["room.created"]
    await store.close()


async def test_migrated_workflows_keep_working_and_survive_a_reopen(tmp_path):
    store = await _open_v1(tmp_path)
    async with store.transaction():
        await store.reinvited(ROOM, PAT)
        await store.drop_pending_banner(ROOM2, "first_member")
        await store.drop_undecryptable("$evt1")
        await store.mark_warned(ROOM, PAT, "ABCDEFGHIJ")  # already there: no error
        await store.add_undecryptable("$evt2", ROOM2, 5.0, {"event_id": "$evt2"})
        await store.add_undecryptable("$evt2", ROOM2, 9.0, {"event_id": "$evt2"})  # first deadline kept
    await store.close()
    store = await Store.open(tmp_path / "carebot.db")
    assert await store.schema_version() == LATEST
    assert not await store.needs_reinvite(ROOM, PAT)
    assert await store.pending_banner(ROOM2, "first_member") is None
    assert [(u.event_id, u.deadline) for u in await store.undecryptables()] == [("$evt2", 5.0)]
    assert await store.was_warned(ROOM, PAT, "ABCDEFGHIJ")
    await store.close()
