"""The care records: rooms of pairs, renewal requests, the outbox and the audit trail."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from bot.db import Database
from bot.store.mirror import Mirror
from bot.store.records import OutboxItem, Request, RoomRecord, _request

SENT_CHUNK = 500  # ids per DELETE (SQLite allows 32,766 parameters, older builds 999)
_ROOM = "SELECT room_id, patient_id, practitioner_id, state FROM rooms"


class CareTables:
    """Rooms and the outbox are read on every message: both are mirrored in memory (this
    process is their only writer), kept true to what is committed with `after_commit`, so
    that the path from a command to its reply makes two fewer database round trips."""

    db: Database
    _rooms: Mirror[str, RoomRecord | None]
    _outbox: dict[int, OutboxItem]  # unsent replies by id, in id order

    async def _load_care_mirrors(self) -> None:
        self._rooms = Mirror(self.db)
        rows = await self.db.fetch("SELECT id, txn_id, room_id, event_type, content FROM outbox ORDER BY id")
        self._outbox = {r[0]: OutboxItem(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows}

    # -- rooms ---------------------------------------------------------------------------
    async def rooms(self) -> list[RoomRecord]:
        return [RoomRecord(*row) for row in await self.db.fetch(_ROOM)]

    async def room_for_pair(self, patient_id: str, practitioner_id: str) -> RoomRecord | None:
        row = await self.db.fetchrow(_ROOM + " WHERE patient_id = $1 AND practitioner_id = $2", patient_id, practitioner_id)
        return None if row is None else RoomRecord(*row)

    async def room(self, room_id: str) -> RoomRecord | None:
        async def load() -> RoomRecord | None:
            row = await self.db.fetchrow(_ROOM + " WHERE room_id = $1", room_id)
            return None if row is None else RoomRecord(*row)

        return await self._rooms.get(room_id, load)

    async def save_room(
        self, room_id: str, patient_id: str, practitioner_id: str, state: str = "active"
    ) -> None:
        self._rooms.written(room_id)
        await self.db.execute(
            "INSERT INTO rooms (room_id, patient_id, practitioner_id, state, created_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (room_id) DO UPDATE SET state = excluded.state",
            room_id, patient_id, practitioner_id, state, time.time(),
        )

    async def set_room_state(self, room_id: str, state: str) -> None:
        self._rooms.written(room_id)
        await self.db.execute("UPDATE rooms SET state = $1 WHERE room_id = $2", state, room_id)

    # -- requests ------------------------------------------------------------------------
    async def add_request(
        self,
        *,
        event_id: str | None,
        room_id: str,
        patient_id: str,
        practitioner_id: str,
        medication: str,
        medication_key: str,
        status: str,
        rules: tuple[str, ...] = (),
    ) -> Request:
        row = await self.db.fetchrow(
            "INSERT INTO requests (event_id, room_id, patient_id, practitioner_id, medication, "
            "medication_key, status, rules, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            "RETURNING *",
            event_id, room_id, patient_id, practitioner_id, medication, medication_key, status,
            json.dumps(list(rules)), time.time(),
        )
        assert row is not None
        return _request(row)

    async def request(self, request_id: int) -> Request | None:
        row = await self.db.fetchrow("SELECT * FROM requests WHERE id = $1", request_id)
        return None if row is None else _request(row)

    async def request_by_event(self, event_id: str) -> Request | None:
        """The request made by this message, if any."""
        row = await self.db.fetchrow("SELECT * FROM requests WHERE event_id = $1", event_id)
        return None if row is None else _request(row)

    async def requests_in_room(self, room_id: str, status: str | None = None) -> list[Request]:
        if status is None:
            rows = await self.db.fetch("SELECT * FROM requests WHERE room_id = $1 ORDER BY id", room_id)
        else:
            rows = await self.db.fetch(
                "SELECT * FROM requests WHERE room_id = $1 AND status = $2 ORDER BY id", room_id, status
            )
        return [_request(r) for r in rows]

    async def open_requests(self, patient_id: str) -> list[Request]:
        rows = await self.db.fetch(
            "SELECT * FROM requests WHERE patient_id = $1 AND status = 'pending' ORDER BY id", patient_id
        )
        return [_request(r) for r in rows]

    async def pending_for_practitioner(self, practitioner_id: str) -> list[Request]:
        """Pending requests of all of a practitioner's patients, oldest first (the desk)."""
        rows = await self.db.fetch(
            "SELECT * FROM requests WHERE practitioner_id = $1 AND status = 'pending' ORDER BY created_at, id",
            practitioner_id,
        )
        return [_request(r) for r in rows]

    async def decide(
        self, request_id: int, status: str, note: str | None, decided_by: str
    ) -> bool:
        """Move a pending request to its final state; False when it was not pending."""
        changed = await self.db.execute(
            "UPDATE requests SET status = $1, note = $2, decided_at = $3, decided_by = $4 "
            "WHERE id = $5 AND status = 'pending'",
            status, note, time.time(), decided_by, request_id,
        )
        return changed == 1

    async def purge_decided(self, older_than_days: int) -> int:
        cutoff = time.time() - older_than_days * 86400
        return await self.db.execute(
            "DELETE FROM requests WHERE status != 'pending' AND COALESCE(decided_at, created_at) < $1",
            cutoff,
        )

    # -- outbox --------------------------------------------------------------------------
    async def enqueue(
        self, txn_id: str, room_id: str, content: dict[str, Any], event_type: str = "m.room.message"
    ) -> None:
        stored = json.dumps(content)
        new_id = await self.db.fetchval(
            "INSERT INTO outbox (txn_id, room_id, event_type, content, created_at) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING id",
            txn_id, room_id, event_type, stored, time.time(),
        )
        if new_id is not None:  # None: that transaction id is already queued
            item = OutboxItem(new_id, txn_id, room_id, event_type, json.loads(stored))
            self.db.after_commit(lambda: self._outbox.__setitem__(item.id, item))

    async def outbox(self, limit: int = 100) -> list[OutboxItem]:
        return self.queued(limit)

    def queued(self, limit: int = 100) -> list[OutboxItem]:
        """The oldest unsent replies, from the mirror: no database round trip, and no row of a
        transaction still open (the mirror changes only once a transaction commits)."""
        return list(itertools.islice(self._outbox.values(), limit))

    async def sent(self, outbox_id: int) -> None:
        await self.sent_many([outbox_id])

    async def sent_many(self, outbox_ids: list[int]) -> None:
        """Remove sent items, in one statement per SENT_CHUNK of them."""
        for start in range(0, len(outbox_ids), SENT_CHUNK):
            chunk = outbox_ids[start : start + SENT_CHUNK]
            marks = ", ".join(f"${n}" for n in range(1, len(chunk) + 1))
            await self.db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", *chunk)

        def committed() -> None:
            for outbox_id in outbox_ids:
                self._outbox.pop(outbox_id, None)

        self.db.after_commit(committed)

    # -- audit ---------------------------------------------------------------------------
    async def audit(
        self,
        actor: str,
        action: str,
        subject: str | None = None,
        details: dict[str, Any] | None = None,
        policy_hash: str | None = None,
    ) -> None:
        await self.db.execute(
            "INSERT INTO audit (at, actor, action, subject, details, policy_hash) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            time.time(), actor, action, subject, json.dumps(details or {}), policy_hash,
        )

    async def audit_since(self, since: float) -> list[dict[str, Any]]:
        rows = await self.db.fetch("SELECT * FROM audit WHERE at >= $1 ORDER BY id", float(since))
        return [
            {
                "id": r["id"],
                "at": r["at"],
                "actor": r["actor"],
                "action": r["action"],
                "subject": r["subject"],
                "details": json.loads(r["details"]),
                "policy_hash": r["policy_hash"],
            }
            for r in rows
        ]
