"""Workflow state of the running bot, one table each (schema v2): room banners waiting for a
join, members to invite again, unsigned-device warnings already given, messages waiting for
their key."""

from __future__ import annotations

import json
from typing import Any

import aiosqlite

from bot.store.records import Undecryptable


class WorkflowTables:
    _db: aiosqlite.Connection

    # -- workflows: room banners ----------------------------------------------------------
    # audience "first_member": posted when the first member joins; "patient": posted again
    # when the patient joins after the practitioner.
    async def pending_banner(self, room_id: str, audience: str) -> dict[str, Any] | None:
        async with self._db.execute(
            "SELECT content FROM pending_banners WHERE room_id = ? AND audience = ?",
            (room_id, audience),
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else dict(json.loads(row[0]))

    async def save_pending_banner(self, room_id: str, audience: str, content: dict[str, Any]) -> None:
        await self._db.execute(
            "INSERT INTO pending_banners (room_id, audience, content) VALUES (?, ?, ?) "
            "ON CONFLICT (room_id, audience) DO UPDATE SET content = excluded.content",
            (room_id, audience, json.dumps(content)),
        )

    async def drop_pending_banner(self, room_id: str, audience: str) -> None:
        await self._db.execute(
            "DELETE FROM pending_banners WHERE room_id = ? AND audience = ?", (room_id, audience)
        )

    # -- workflows: members to invite again ------------------------------------------------
    async def need_reinvite(self, room_id: str, member_id: str) -> None:
        await self._db.execute(
            "INSERT INTO reinvites (room_id, member_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (room_id, member_id),
        )

    async def needs_reinvite(self, room_id: str, member_id: str) -> bool:
        async with self._db.execute(
            "SELECT 1 FROM reinvites WHERE room_id = ? AND member_id = ?", (room_id, member_id)
        ) as cur:
            return await cur.fetchone() is not None

    async def reinvited(self, room_id: str, member_id: str) -> None:
        await self._db.execute(
            "DELETE FROM reinvites WHERE room_id = ? AND member_id = ?", (room_id, member_id)
        )

    # -- workflows: unsigned-device warnings ---------------------------------------------
    async def was_warned(self, room_id: str, user_id: str, device_id: str) -> bool:
        async with self._db.execute(
            "SELECT 1 FROM device_warnings WHERE room_id = ? AND user_id = ? AND device_id = ?",
            (room_id, user_id, device_id),
        ) as cur:
            return await cur.fetchone() is not None

    async def mark_warned(self, room_id: str, user_id: str, device_id: str) -> None:
        await self._db.execute(
            "INSERT INTO device_warnings (room_id, user_id, device_id) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (room_id, user_id, device_id),
        )

    # -- workflows: messages waiting for their key ----------------------------------------
    async def add_undecryptable(
        self, event_id: str, room_id: str, deadline: float, source: dict[str, Any]
    ) -> None:
        """Remember an event to decrypt later; a second sighting keeps the first deadline."""
        await self._db.execute(
            "INSERT INTO undecryptable (event_id, room_id, deadline, source) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (event_id, room_id, deadline, json.dumps(source)),
        )

    async def undecryptables(self) -> list[Undecryptable]:
        async with self._db.execute(
            "SELECT event_id, room_id, deadline, source FROM undecryptable ORDER BY event_id"
        ) as cur:
            rows = await cur.fetchall()
        return [Undecryptable(str(e), str(r), float(d), json.loads(s)) for e, r, d, s in rows]

    async def drop_undecryptable(self, event_id: str) -> None:
        await self._db.execute("DELETE FROM undecryptable WHERE event_id = ?", (event_id,))
