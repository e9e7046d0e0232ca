"""The practitioner desk's tables (schema v5): each practitioner's Space and desk room, the
Space's children, absences and who was told about them today, digests and reminders sent,
and the practitioner devices the desk already caught up."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import aiosqlite

from bot.desk.absence import Absence


@dataclass(frozen=True)
class DeskRecord:
    practitioner_id: str
    desk_room_id: str | None
    space_id: str | None


class DeskTables:
    _db: aiosqlite.Connection

    # -- desks and Spaces ------------------------------------------------------------------
    async def desks(self) -> list[DeskRecord]:
        async with self._db.execute("SELECT practitioner_id, desk_room_id, space_id FROM desks") as cur:
            return [DeskRecord(*row) for row in await cur.fetchall()]

    async def desk(self, practitioner_id: str) -> DeskRecord | None:
        async with self._db.execute(
            "SELECT practitioner_id, desk_room_id, space_id FROM desks WHERE practitioner_id = ?", (practitioner_id,)
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else DeskRecord(*row)

    async def desk_by_room(self, room_id: str) -> DeskRecord | None:
        async with self._db.execute(
            "SELECT practitioner_id, desk_room_id, space_id FROM desks WHERE desk_room_id = ?", (room_id,)
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else DeskRecord(*row)

    async def desk_by_space(self, space_id: str) -> DeskRecord | None:
        async with self._db.execute(
            "SELECT practitioner_id, desk_room_id, space_id FROM desks WHERE space_id = ?", (space_id,)
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else DeskRecord(*row)

    async def save_desk(self, practitioner_id: str, *, desk_room_id: str | None = None, space_id: str | None = None) -> None:
        await self._db.execute(
            "INSERT INTO desks (practitioner_id, desk_room_id, space_id, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (practitioner_id) DO UPDATE SET "
            "desk_room_id = COALESCE(excluded.desk_room_id, desks.desk_room_id), "
            "space_id = COALESCE(excluded.space_id, desks.space_id)",
            (practitioner_id, desk_room_id, space_id, time.time()),
        )

    async def space_children(self, space_id: str) -> set[str]:
        async with self._db.execute("SELECT room_id FROM space_children WHERE space_id = ?", (space_id,)) as cur:
            return {str(r[0]) for r in await cur.fetchall()}

    async def add_space_child(self, space_id: str, room_id: str) -> None:
        await self._db.execute(
            "INSERT INTO space_children (space_id, room_id) VALUES (?, ?) ON CONFLICT DO NOTHING", (space_id, room_id)
        )

    async def drop_space_child(self, space_id: str, room_id: str) -> None:
        await self._db.execute("DELETE FROM space_children WHERE space_id = ? AND room_id = ?", (space_id, room_id))

    # -- absences ----------------------------------------------------------------------------
    async def absence(self, practitioner_id: str) -> Absence | None:
        async with self._db.execute(
            "SELECT back_on, message FROM absences WHERE practitioner_id = ?", (practitioner_id,)
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else Absence(practitioner_id, dt.date.fromisoformat(row[0]), row[1])

    async def set_absence(self, absence: Absence) -> None:
        await self._db.execute(
            "INSERT INTO absences (practitioner_id, back_on, message, set_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (practitioner_id) DO UPDATE SET back_on = excluded.back_on, "
            "message = excluded.message, set_at = excluded.set_at",
            (absence.practitioner_id, absence.back_on.isoformat(), absence.message, time.time()),
        )
        await self._db.execute("DELETE FROM absence_notices WHERE practitioner_id = ?", (absence.practitioner_id,))

    async def clear_absence(self, practitioner_id: str) -> bool:
        cur = await self._db.execute("DELETE FROM absences WHERE practitioner_id = ?", (practitioner_id,))
        await self._db.execute("DELETE FROM absence_notices WHERE practitioner_id = ?", (practitioner_id,))
        return cur.rowcount == 1

    async def absence_told(self, practitioner_id: str, patient_id: str) -> dt.date | None:
        async with self._db.execute(
            "SELECT day FROM absence_notices WHERE practitioner_id = ? AND patient_id = ?", (practitioner_id, patient_id)
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else dt.date.fromisoformat(row[0])

    async def set_absence_told(self, practitioner_id: str, patient_id: str, day: dt.date) -> None:
        await self._db.execute(
            "INSERT INTO absence_notices (practitioner_id, patient_id, day) VALUES (?, ?, ?) "
            "ON CONFLICT (practitioner_id, patient_id) DO UPDATE SET day = excluded.day",
            (practitioner_id, patient_id, day.isoformat()),
        )

    # -- digests, reminders, devices caught up ---------------------------------------------------
    async def last_digest(self, practitioner_id: str) -> dt.date | None:
        async with self._db.execute("SELECT day FROM desk_digests WHERE practitioner_id = ?", (practitioner_id,)) as cur:
            row = await cur.fetchone()
        return None if row is None else dt.date.fromisoformat(row[0])

    async def set_last_digest(self, practitioner_id: str, day: dt.date) -> None:
        await self._db.execute(
            "INSERT INTO desk_digests (practitioner_id, day) VALUES (?, ?) "
            "ON CONFLICT (practitioner_id) DO UPDATE SET day = excluded.day",
            (practitioner_id, day.isoformat()),
        )

    async def reminded(self, request_ids: list[int]) -> set[int]:
        if not request_ids:
            return set()
        marks = ",".join("?" * len(request_ids))
        async with self._db.execute(f"SELECT request_id FROM desk_reminders WHERE request_id IN ({marks})", request_ids) as cur:  # noqa: S608 - placeholders only
            return {int(r[0]) for r in await cur.fetchall()}

    async def mark_reminded(self, request_id: int) -> None:
        await self._db.execute(
            "INSERT INTO desk_reminders (request_id, sent_at) VALUES (?, ?) ON CONFLICT DO NOTHING", (request_id, time.time())
        )

    async def desk_devices(self, practitioner_id: str) -> set[str]:
        async with self._db.execute("SELECT device_id FROM desk_devices WHERE practitioner_id = ?", (practitioner_id,)) as cur:
            return {str(r[0]) for r in await cur.fetchall()}

    async def add_desk_devices(self, practitioner_id: str, device_ids: set[str]) -> None:
        for device_id in sorted(device_ids):
            await self._db.execute(
                "INSERT INTO desk_devices (practitioner_id, device_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (practitioner_id, device_id),
            )
