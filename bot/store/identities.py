"""Pinned identities (schema v3): the first cross-signing master key seen for each roster
member, and a new one the homeserver showed since (an identity reset) until the clinic admin
accepts it. Also the Megolm sessions a sending device handed back itself at the bot's request."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from bot.db import Database


@dataclass(frozen=True)
class IdentityPin:
    user_id: str
    master_key: str  # the pinned (trusted) master key
    pinned_at: float
    new_master_key: str | None  # a different key the homeserver shows, not accepted yet
    changed_at: float | None


_COLUMNS = "user_id, master_key, pinned_at, new_master_key, changed_at"


class IdentityTables:
    db: Database

    async def identity_pins(self, user_ids: Iterable[str] | None = None) -> dict[str, IdentityPin]:
        """The pins of `user_ids` (every pin when None)."""
        if user_ids is None:
            rows = await self.db.fetch(f"SELECT {_COLUMNS} FROM identity_pins ORDER BY user_id")
            return {p.user_id: p for p in (IdentityPin(*row) for row in rows)}
        wanted = sorted(set(user_ids))
        out: dict[str, IdentityPin] = {}
        for i in range(0, len(wanted), 500):  # bounded IN lists, for both SQLite and PostgreSQL
            chunk = wanted[i : i + 500]
            marks = ", ".join(f"${n}" for n in range(1, len(chunk) + 1))
            rows = await self.db.fetch(f"SELECT {_COLUMNS} FROM identity_pins WHERE user_id IN ({marks})", *chunk)
            out.update((p.user_id, p) for p in (IdentityPin(*row) for row in rows))
        return out

    async def pin_identity(self, user_id: str, master_key: str) -> bool:
        """Pin the first master key seen; False if the user was already pinned."""
        return await self.db.execute(
            "INSERT INTO identity_pins (user_id, master_key, pinned_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (user_id) DO NOTHING",
            user_id, master_key, time.time(),
        ) == 1

    async def note_identity_change(self, user_id: str, new_master_key: str | None) -> None:
        """Record (or, with None, forget) a master key that differs from the pinned one."""
        await self.db.execute(
            "UPDATE identity_pins SET new_master_key = $1, changed_at = $2 WHERE user_id = $3",
            new_master_key, None if new_master_key is None else time.time(), user_id,
        )

    async def accept_identity(self, user_id: str) -> IdentityPin | None:
        """The new master key becomes the pinned one; None if there was no change to accept."""
        pin = (await self.identity_pins([user_id])).get(user_id)
        if pin is None or pin.new_master_key is None:
            return None
        await self.db.execute(
            "UPDATE identity_pins SET master_key = new_master_key, pinned_at = $1, "
            "new_master_key = NULL, changed_at = NULL WHERE user_id = $2",
            time.time(), user_id,
        )
        return pin

    # -- sessions forwarded by the device that made them ----------------------------------
    async def remember_owner_forwarded(self, sessions: Iterable[tuple[str, str, str]]) -> None:
        for room_id, sender_key, session_id in sessions:
            await self.db.execute(
                "INSERT INTO owner_forwarded_sessions (room_id, sender_key, session_id) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING",
                room_id, sender_key, session_id,
            )

    async def is_owner_forwarded(self, room_id: str, sender_key: str, session_id: str) -> bool:
        return await self.db.fetchrow(
            "SELECT 1 FROM owner_forwarded_sessions WHERE room_id = $1 AND sender_key = $2 AND session_id = $3",
            room_id, sender_key, session_id,
        ) is not None
