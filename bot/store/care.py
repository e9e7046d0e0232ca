"""The care records: rooms of pairs, renewal requests, the outbox and the audit trail."""

from __future__ import annotations

import json
import time
from typing import Any

import aiosqlite

from bot.store.records import OutboxItem, Request, RoomRecord, _request


class CareTables:
    _db: aiosqlite.Connection

    # -- rooms ---------------------------------------------------------------------------
    async def rooms(self) -> list[RoomRecord]:
        async with self._db.execute(
            "SELECT room_id, patient_id, practitioner_id, state FROM rooms"
        ) as cur:
            return [RoomRecord(*row) for row in await cur.fetchall()]

    async def room_for_pair(self, patient_id: str, practitioner_id: str) -> RoomRecord | None:
        async with self._db.execute(
            "SELECT room_id, patient_id, practitioner_id, state FROM rooms "
            "WHERE patient_id = ? AND practitioner_id = ?",
            (patient_id, practitioner_id),
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else RoomRecord(*row)

    async def room(self, room_id: str) -> RoomRecord | None:
        async with self._db.execute(
            "SELECT room_id, patient_id, practitioner_id, state FROM rooms WHERE room_id = ?",
            (room_id,),
        ) as cur:
            row = await cur.fetchone()
        return None if row is None else RoomRecord(*row)

    async def save_room(
        self, room_id: str, patient_id: str, practitioner_id: str, state: str = "active"
    ) -> None:
        await self._db.execute(
            "INSERT INTO rooms (room_id, patient_id, practitioner_id, state, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(room_id) DO UPDATE SET state = excluded.state",
            (room_id, patient_id, practitioner_id, state, time.time()),
        )

    async def set_room_state(self, room_id: str, state: str) -> None:
        await self._db.execute("UPDATE rooms SET state = ? WHERE room_id = ?", (state, room_id))

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
        cur = await self._db.execute(
            "INSERT INTO requests (event_id, room_id, patient_id, practitioner_id, medication, "
            "medication_key, status, rules, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event_id,
                room_id,
                patient_id,
                practitioner_id,
                medication,
                medication_key,
                status,
                json.dumps(list(rules)),
                time.time(),
            ),
        )
        request = await self.request(int(cur.lastrowid or 0))
        assert request is not None
        return request

    async def request(self, request_id: int) -> Request | None:
        async with self._db.execute("SELECT * FROM requests WHERE id = ?", (request_id,)) as cur:
            row = await cur.fetchone()
        return None if row is None else _request(row)

    async def requests_in_room(self, room_id: str, status: str | None = None) -> list[Request]:
        sql = "SELECT * FROM requests WHERE room_id = ?"
        params: tuple[Any, ...] = (room_id,)
        if status is not None:
            sql += " AND status = ?"
            params += (status,)
        async with self._db.execute(sql + " ORDER BY id", params) as cur:
            return [_request(r) for r in await cur.fetchall()]

    async def open_requests(self, patient_id: str) -> list[Request]:
        async with self._db.execute(
            "SELECT * FROM requests WHERE patient_id = ? AND status = 'pending' ORDER BY id",
            (patient_id,),
        ) as cur:
            return [_request(r) for r in await cur.fetchall()]

    async def decide(
        self, request_id: int, status: str, note: str | None, decided_by: str
    ) -> bool:
        """Move a pending request to its final state; False when it was not pending."""
        cur = await self._db.execute(
            "UPDATE requests SET status = ?, note = ?, decided_at = ?, decided_by = ? "
            "WHERE id = ? AND status = 'pending'",
            (status, note, time.time(), decided_by, request_id),
        )
        return cur.rowcount == 1

    async def purge_decided(self, older_than_days: int) -> int:
        cutoff = time.time() - older_than_days * 86400
        cur = await self._db.execute(
            "DELETE FROM requests WHERE status != 'pending' "
            "AND COALESCE(decided_at, created_at) < ?",
            (cutoff,),
        )
        return cur.rowcount

    # -- outbox --------------------------------------------------------------------------
    async def enqueue(
        self, txn_id: str, room_id: str, content: dict[str, Any], event_type: str = "m.room.message"
    ) -> None:
        await self._db.execute(
            "INSERT OR IGNORE INTO outbox (txn_id, room_id, event_type, content, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (txn_id, room_id, event_type, json.dumps(content), time.time()),
        )

    async def outbox(self, limit: int = 100) -> list[OutboxItem]:
        async with self._db.execute(
            "SELECT id, txn_id, room_id, event_type, content FROM outbox ORDER BY id LIMIT ?",
            (limit,),
        ) as cur:
            rows = await cur.fetchall()
        return [
            OutboxItem(r["id"], r["txn_id"], r["room_id"], r["event_type"], json.loads(r["content"]))
            for r in rows
        ]

    async def sent(self, outbox_id: int) -> None:
        await self._db.execute("DELETE FROM outbox WHERE id = ?", (outbox_id,))

    # -- audit ---------------------------------------------------------------------------
    async def audit(
        self,
        actor: str,
        action: str,
        subject: str | None = None,
        details: dict[str, Any] | None = None,
        policy_hash: str | None = None,
    ) -> None:
        await self._db.execute(
            "INSERT INTO audit (at, actor, action, subject, details, policy_hash) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (time.time(), actor, action, subject, json.dumps(details or {}), policy_hash),
        )

    async def audit_since(self, since: float) -> list[dict[str, Any]]:
        async with self._db.execute(
            "SELECT * FROM audit WHERE at >= ? ORDER BY id", (since,)
        ) as cur:
            rows = await cur.fetchall()
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
