"""Workflow state of the running bot, one table each (schema v2): room banners waiting for a
join, members to invite again, unsigned-device warnings already given, messages waiting for
their key."""

from __future__ import annotations

import json
from typing import Any

from bot.db import Database
from bot.store.records import Undecryptable


class WorkflowTables:
    db: Database

    # -- workflows: room banners ----------------------------------------------------------
    # audience "first_member": posted when the first member joins; "patient": posted again
    # when the patient joins after the practitioner.
    async def pending_banner(self, room_id: str, audience: str) -> dict[str, Any] | None:
        value = await self.db.fetchval(
            "SELECT content FROM pending_banners WHERE room_id = $1 AND audience = $2", room_id, audience
        )
        return None if value is None else dict(json.loads(value))

    async def save_pending_banner(self, room_id: str, audience: str, content: dict[str, Any]) -> None:
        await self.db.execute(
            "INSERT INTO pending_banners (room_id, audience, content) VALUES ($1, $2, $3) "
            "ON CONFLICT (room_id, audience) DO UPDATE SET content = excluded.content",
            room_id, audience, json.dumps(content),
        )

    async def drop_pending_banner(self, room_id: str, audience: str) -> None:
        await self.db.execute("DELETE FROM pending_banners WHERE room_id = $1 AND audience = $2", room_id, audience)

    # -- workflows: members to invite again ------------------------------------------------
    async def need_reinvite(self, room_id: str, member_id: str) -> None:
        await self.db.execute(
            "INSERT INTO reinvites (room_id, member_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", room_id, member_id
        )

    async def needs_reinvite(self, room_id: str, member_id: str) -> bool:
        return await self.db.fetchrow(
            "SELECT 1 FROM reinvites WHERE room_id = $1 AND member_id = $2", room_id, member_id
        ) is not None

    async def pending_reinvites(self) -> set[tuple[str, str]]:
        """Every (room id, member id) waiting to be invited again, in one query."""
        return {(str(r), str(m)) for r, m in await self.db.fetch("SELECT room_id, member_id FROM reinvites")}

    async def reinvited(self, room_id: str, member_id: str) -> None:
        await self.db.execute("DELETE FROM reinvites WHERE room_id = $1 AND member_id = $2", room_id, member_id)

    # -- workflows: unsigned-device warnings ---------------------------------------------
    async def was_warned(self, room_id: str, user_id: str, device_id: str) -> bool:
        return await self.db.fetchrow(
            "SELECT 1 FROM device_warnings WHERE room_id = $1 AND user_id = $2 AND device_id = $3",
            room_id, user_id, device_id,
        ) is not None

    async def mark_warned(self, room_id: str, user_id: str, device_id: str) -> None:
        await self.db.execute(
            "INSERT INTO device_warnings (room_id, user_id, device_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            room_id, user_id, device_id,
        )

    # -- workflows: messages waiting for their key ----------------------------------------
    async def add_undecryptable(
        self, event_id: str, room_id: str, deadline: float, source: dict[str, Any]
    ) -> None:
        """Remember an event to decrypt later; a second sighting keeps the first deadline."""
        await self.db.execute(
            "INSERT INTO undecryptable (event_id, room_id, deadline, source) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT DO NOTHING",
            event_id, room_id, float(deadline), json.dumps(source),
        )

    async def undecryptables(self) -> list[Undecryptable]:
        rows = await self.db.fetch("SELECT event_id, room_id, deadline, source FROM undecryptable ORDER BY event_id")
        return [Undecryptable(str(e), str(r), float(d), json.loads(s)) for e, r, d, s in rows]

    async def drop_undecryptable(self, event_id: str) -> None:
        await self.db.execute("DELETE FROM undecryptable WHERE event_id = $1", event_id)
