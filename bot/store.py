"""The bot's own database: aiosqlite, versioned migrations, one transaction per handled event.

What it stores (documented for the clinic in the README):
- `kv`: the sync token and small bookkeeping values.
- `processed_events`: ids of Matrix events already handled, so a redelivered event is ignored.
- `rooms`: which room belongs to which (patient id, practitioner id) pair — roster ids only.
- `requests`: renewal requests (roster ids, the medication as understood, status, rule ids, note
  or reason, timestamps). This is medical data: the database file is 0600 under `storage.path`.
- `outbox`: replies decided but not yet confirmed sent; each has a transaction id so that a
  resend after a crash is de-duplicated by the homeserver. Sent rows are deleted.
- `audit`: append-only records of requests, decisions, rooms and reloads (ids only).
- `fhir_writes`, `fhir_tasks`, `fhir_state`: the clinic bridge (bot/fhir/tables.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from bot.fhir import tables as fhir_tables

Migration = Callable[[aiosqlite.Connection], Awaitable[None]]


class StoreError(Exception):
    pass


async def _run(db: aiosqlite.Connection, script: str) -> None:
    """Run statements separated by blank lines (executescript would commit on its own)."""
    for statement in script.split("\n\n"):
        if statement.strip():
            await db.execute(statement)


async def _v1(db: aiosqlite.Connection) -> None:
    await _run(
        db,
        """
        CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);

        CREATE TABLE processed_events (
            event_id TEXT PRIMARY KEY,
            room_id TEXT NOT NULL,
            handled_at REAL NOT NULL
        );

        CREATE TABLE rooms (
            room_id TEXT PRIMARY KEY,
            patient_id TEXT NOT NULL,
            practitioner_id TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'active',
            created_at REAL NOT NULL,
            UNIQUE (patient_id, practitioner_id)
        );

        CREATE TABLE requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT UNIQUE,
            room_id TEXT NOT NULL,
            patient_id TEXT NOT NULL,
            practitioner_id TEXT NOT NULL,
            medication TEXT NOT NULL,
            medication_key TEXT NOT NULL,
            status TEXT NOT NULL,
            rules TEXT NOT NULL DEFAULT '[]',
            note TEXT,
            created_at REAL NOT NULL,
            decided_at REAL,
            decided_by TEXT
        );

        CREATE INDEX requests_room ON requests (room_id, status);

        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            txn_id TEXT NOT NULL UNIQUE,
            room_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            content TEXT NOT NULL,
            created_at REAL NOT NULL
        );

        CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            subject TEXT,
            details TEXT NOT NULL DEFAULT '{}',
            policy_hash TEXT
        );

        CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
            BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END

        CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
            BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END
        """,
    )


# Ordered: index i migrates from version i to i + 1. Append, never edit a released one.
MIGRATIONS: list[Migration] = [_v1, fhir_tables.migrate]
LATEST = len(MIGRATIONS)


@dataclass(frozen=True)
class Request:
    id: int
    event_id: str | None
    room_id: str
    patient_id: str
    practitioner_id: str
    medication: str
    medication_key: str
    status: str
    rules: tuple[str, ...]
    note: str | None
    created_at: float
    decided_at: float | None
    decided_by: str | None


@dataclass(frozen=True)
class OutboxItem:
    id: int
    txn_id: str
    room_id: str
    event_type: str
    content: dict[str, Any]


@dataclass(frozen=True)
class RoomRecord:
    room_id: str
    patient_id: str
    practitioner_id: str
    state: str


def _request(row: aiosqlite.Row) -> Request:
    return Request(
        id=row["id"],
        event_id=row["event_id"],
        room_id=row["room_id"],
        patient_id=row["patient_id"],
        practitioner_id=row["practitioner_id"],
        medication=row["medication"],
        medication_key=row["medication_key"],
        status=row["status"],
        rules=tuple(json.loads(row["rules"])),
        note=row["note"],
        created_at=row["created_at"],
        decided_at=row["decided_at"],
        decided_by=row["decided_by"],
    )


class Store(fhir_tables.FhirTables):
    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> "Store":
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fresh = not path.exists()
        db = await aiosqlite.connect(path, isolation_level=None)
        if fresh:
            os.chmod(path, 0o600)
        db.row_factory = aiosqlite.Row
        await db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a committed transaction survives a crash of the process (kill -9);
        # after a power cut the last ones may be lost, together with the sync token stored in
        # the same database, so those events are fetched and handled again (replies keep
        # their transaction ids, and the homeserver drops the duplicates).
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("PRAGMA foreign_keys=ON")
        store = cls(db, path)
        try:
            await store._migrate()
        except BaseException:
            await db.close()
            raise
        return store

    async def _migrate(self) -> None:
        async with self._db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        version = int(row[0]) if row else 0
        if version > LATEST:
            raise StoreError(
                f"The database {self.path} has schema version {version}, newer than this "
                f"carebot understands ({LATEST}). Upgrade carebot, or restore a backup made "
                "with this version; the database was left untouched."
            )
        for target in range(version + 1, LATEST + 1):
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                await MIGRATIONS[target - 1](self._db)
                await self._db.execute(f"PRAGMA user_version = {target}")
                await self._db.execute("COMMIT")
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise

    async def schema_version(self) -> int:
        async with self._db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def close(self) -> None:
        await self._db.close()

    # -- transactions --------------------------------------------------------------------
    def transaction(self) -> "_Tx":
        return _Tx(self._db, self._lock)

    # -- key/value -----------------------------------------------------------------------
    async def get(self, key: str) -> str | None:
        async with self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)) as cur:
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def set(self, key: str, value: str) -> None:
        await self._db.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    async def items(self, prefix: str) -> list[tuple[str, str]]:
        async with self._db.execute(
            "SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key",
            (prefix, prefix + "\uffff"),
        ) as cur:
            return [(str(k), str(v)) for k, v in await cur.fetchall()]

    async def delete(self, key: str) -> None:
        await self._db.execute("DELETE FROM kv WHERE key = ?", (key,))

    # -- events --------------------------------------------------------------------------
    async def is_processed(self, event_id: str) -> bool:
        async with self._db.execute(
            "SELECT 1 FROM processed_events WHERE event_id = ?", (event_id,)
        ) as cur:
            return await cur.fetchone() is not None

    async def mark_processed(self, event_id: str, room_id: str) -> None:
        await self._db.execute(
            "INSERT OR IGNORE INTO processed_events (event_id, room_id, handled_at) VALUES (?, ?, ?)",
            (event_id, room_id, time.time()),
        )

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


class _Tx:
    """`async with store.transaction():` — BEGIN IMMEDIATE … COMMIT, or ROLLBACK on error."""

    def __init__(self, db: aiosqlite.Connection, lock: asyncio.Lock) -> None:
        self._db = db
        self._lock = lock

    async def __aenter__(self) -> None:
        await self._lock.acquire()
        try:
            await self._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                await self._db.execute("COMMIT")
            else:
                await self._db.execute("ROLLBACK")
        finally:
            self._lock.release()
