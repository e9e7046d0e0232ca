"""The practitioner desk's tables (schema v5): each practitioner's Space and desk room, the
Space's children, absences and who was told about them today, digests and reminders sent,
and the practitioner devices the desk already caught up."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from bot.db import Database
from bot.desk.absence import Absence
from bot.store.mirror import Mirror


@dataclass(frozen=True)
class DeskRecord:
    practitioner_id: str
    desk_room_id: str | None
    space_id: str | None


_DESK = "SELECT practitioner_id, desk_room_id, space_id FROM desks"


class DeskTables:
    """A practitioner's desk and absence are read on every patient message: both are
    mirrored (bot/store/mirror.py; this process alone serves the practitioner)."""

    db: Database
    _desk_of: Mirror[str, DeskRecord | None]
    _absence_of: Mirror[str, Absence | None]

    def _load_desk_mirrors(self) -> None:
        self._desk_of, self._absence_of = Mirror(self.db), Mirror(self.db)

    # -- desks and Spaces ------------------------------------------------------------------
    async def desks(self) -> list[DeskRecord]:
        return [DeskRecord(*row) for row in await self.db.fetch(_DESK)]

    async def _desk_where(self, column: str, value: str) -> DeskRecord | None:
        row = await self.db.fetchrow(f"{_DESK} WHERE {column} = $1", value)  # noqa: S608 - a fixed column name
        return None if row is None else DeskRecord(*row)

    async def desk(self, practitioner_id: str) -> DeskRecord | None:
        return await self._desk_of.get(practitioner_id, lambda: self._desk_where("practitioner_id", practitioner_id))

    async def desk_by_room(self, room_id: str) -> DeskRecord | None:
        return await self._desk_where("desk_room_id", room_id)

    async def desk_by_space(self, space_id: str) -> DeskRecord | None:
        return await self._desk_where("space_id", space_id)

    async def save_desk(self, practitioner_id: str, *, desk_room_id: str | None = None, space_id: str | None = None) -> None:
        self._desk_of.written(practitioner_id)
        await self.db.execute(
            "INSERT INTO desks (practitioner_id, desk_room_id, space_id, created_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (practitioner_id) DO UPDATE SET "
            "desk_room_id = COALESCE(excluded.desk_room_id, desks.desk_room_id), "
            "space_id = COALESCE(excluded.space_id, desks.space_id)",
            practitioner_id, desk_room_id, space_id, time.time(),
        )

    async def space_children(self, space_id: str) -> set[str]:
        return {str(r[0]) for r in await self.db.fetch("SELECT room_id FROM space_children WHERE space_id = $1", space_id)}

    async def add_space_child(self, space_id: str, room_id: str) -> None:
        await self.db.execute(
            "INSERT INTO space_children (space_id, room_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", space_id, room_id
        )

    async def drop_space_child(self, space_id: str, room_id: str) -> None:
        await self.db.execute("DELETE FROM space_children WHERE space_id = $1 AND room_id = $2", space_id, room_id)

    # -- absences ----------------------------------------------------------------------------
    async def absence(self, practitioner_id: str) -> Absence | None:
        async def load() -> Absence | None:
            row = await self.db.fetchrow("SELECT back_on, message FROM absences WHERE practitioner_id = $1", practitioner_id)
            return None if row is None else Absence(practitioner_id, dt.date.fromisoformat(row[0]), row[1])

        return await self._absence_of.get(practitioner_id, load)

    async def set_absence(self, absence: Absence) -> None:
        self._absence_of.written(absence.practitioner_id)
        await self.db.execute(
            "INSERT INTO absences (practitioner_id, back_on, message, set_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (practitioner_id) DO UPDATE SET back_on = excluded.back_on, "
            "message = excluded.message, set_at = excluded.set_at",
            absence.practitioner_id, absence.back_on.isoformat(), absence.message, time.time(),
        )
        await self.db.execute("DELETE FROM absence_notices WHERE practitioner_id = $1", absence.practitioner_id)

    async def clear_absence(self, practitioner_id: str) -> bool:
        self._absence_of.written(practitioner_id)
        removed = await self.db.execute("DELETE FROM absences WHERE practitioner_id = $1", practitioner_id)
        await self.db.execute("DELETE FROM absence_notices WHERE practitioner_id = $1", practitioner_id)
        return removed == 1

    async def absence_told(self, practitioner_id: str, patient_id: str) -> dt.date | None:
        value = await self.db.fetchval(
            "SELECT day FROM absence_notices WHERE practitioner_id = $1 AND patient_id = $2", practitioner_id, patient_id
        )
        return None if value is None else dt.date.fromisoformat(value)

    async def set_absence_told(self, practitioner_id: str, patient_id: str, day: dt.date) -> None:
        await self.db.execute(
            "INSERT INTO absence_notices (practitioner_id, patient_id, day) VALUES ($1, $2, $3) "
            "ON CONFLICT (practitioner_id, patient_id) DO UPDATE SET day = excluded.day",
            practitioner_id, patient_id, day.isoformat(),
        )

    # -- digests, reminders, devices caught up ---------------------------------------------------
    async def last_digest(self, practitioner_id: str) -> dt.date | None:
        value = await self.db.fetchval("SELECT day FROM desk_digests WHERE practitioner_id = $1", practitioner_id)
        return None if value is None else dt.date.fromisoformat(value)

    async def set_last_digest(self, practitioner_id: str, day: dt.date) -> None:
        await self.db.execute(
            "INSERT INTO desk_digests (practitioner_id, day) VALUES ($1, $2) "
            "ON CONFLICT (practitioner_id) DO UPDATE SET day = excluded.day",
            practitioner_id, day.isoformat(),
        )

    async def reminded(self, request_ids: list[int]) -> set[int]:
        wanted = set(request_ids)
        if not wanted:
            return set()
        return {int(r[0]) for r in await self.db.fetch("SELECT request_id FROM desk_reminders")} & wanted

    async def mark_reminded(self, request_id: int) -> None:
        await self.db.execute(
            "INSERT INTO desk_reminders (request_id, sent_at) VALUES ($1, $2) ON CONFLICT DO NOTHING", request_id, time.time()
        )

    async def desk_devices(self, practitioner_id: str) -> set[str]:
        return {str(r[0]) for r in await self.db.fetch("SELECT device_id FROM desk_devices WHERE practitioner_id = $1", practitioner_id)}

    async def add_desk_devices(self, practitioner_id: str, device_ids: set[str]) -> None:
        for device_id in sorted(device_ids):
            await self.db.execute(
                "INSERT INTO desk_devices (practitioner_id, device_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                practitioner_id, device_id,
            )
