"""The desk's tables (schema v3) in a real SQLite store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from bot.desk.absence import Absence
from bot.store import LATEST, Store


async def test_desk_tables_keep_desks_absences_digests_reminders_and_devices(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "carebot.db")
    try:
        assert await store.schema_version() == LATEST >= 3
        async with store.transaction():
            await store.save_desk("dr-m", desk_room_id="!desk")
            await store.save_desk("dr-m", space_id="!space")  # the second save keeps the desk
            await store.add_space_child("!space", "!desk")
            await store.add_space_child("!space", "!desk")
            await store.add_space_child("!space", "!pair")
            await store.drop_space_child("!space", "!pair")
        record = await store.desk("dr-m")
        assert (record.desk_room_id, record.space_id) == ("!desk", "!space")
        assert (await store.desk_by_room("!desk")).practitioner_id == "dr-m" and await store.desk_by_room("!x") is None
        assert (await store.desk_by_space("!space")).practitioner_id == "dr-m" and await store.desk_by_space("!desk") is None
        assert await store.space_children("!space") == {"!desk"}

        day = dt.date(2026, 11, 26)
        async with store.transaction():
            await store.set_absence(Absence("dr-m", dt.date(2026, 12, 7), "Dr B."))
            await store.set_absence_told("dr-m", "pat-1", day)
        assert await store.absence("dr-m") == Absence("dr-m", dt.date(2026, 12, 7), "Dr B.")
        assert await store.absence_told("dr-m", "pat-1") == day
        async with store.transaction():  # a new absence: everyone will be told again
            await store.set_absence(Absence("dr-m", dt.date(2026, 12, 20)))
        assert await store.absence_told("dr-m", "pat-1") is None
        async with store.transaction():
            assert await store.clear_absence("dr-m") and not await store.clear_absence("dr-m")
        assert await store.absence("dr-m") is None

        async with store.transaction():
            await store.set_last_digest("dr-m", day)
            await store.mark_reminded(7)
            await store.mark_reminded(7)
            await store.add_desk_devices("dr-m", {"DEV1", "DEV2"})
        assert await store.last_digest("dr-m") == day and await store.last_digest("dr-x") is None
        assert await store.reminded([7, 8]) == {7} and await store.reminded([]) == set()
        assert await store.desk_devices("dr-m") == {"DEV1", "DEV2"}
    finally:
        await store.close()
