"""Schema versions: a numbered list of migrations, each run once in its own transaction.

Statements stay within what SQLite and PostgreSQL both accept.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import aiosqlite

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


# Workflow state of release 1 lived in `kv` under these key prefixes; v2 moves it to tables.
_V1_PREFIXES = {
    "banner_first": "disclaimer_pending:",
    "banner_patient": "disclaimer_for_patient:",
    "reinvite": "reinvite:",
    "warned": "warned:",
    "undecryptable": "undecryptable:",
}


def _split_member(rest: str) -> tuple[str, str]:
    """`!room:server:@user:server…` -> (room id, the rest from the user id on)."""
    room_id, sep, member = rest.partition(":@")
    if not sep:
        raise StoreError(f"unreadable workflow key in table kv: {rest!r}")
    return room_id, "@" + member


async def _v2(db: aiosqlite.Connection) -> None:
    """Workflow tables; the rows release 1 kept in `kv` are moved into them.

    Statements stay within what SQLite and PostgreSQL both accept; the keys are parsed here in
    Python rather than with SQL string functions, which the two spell differently.
    """
    await _run(
        db,
        """
        CREATE TABLE pending_banners (
            room_id TEXT NOT NULL,
            audience TEXT NOT NULL,
            content TEXT NOT NULL,
            PRIMARY KEY (room_id, audience)
        );

        CREATE TABLE reinvites (
            room_id TEXT NOT NULL,
            member_id TEXT NOT NULL,
            PRIMARY KEY (room_id, member_id)
        );

        CREATE TABLE device_warnings (
            room_id TEXT NOT NULL,
            user_id TEXT NOT NULL,
            device_id TEXT NOT NULL,
            PRIMARY KEY (room_id, user_id, device_id)
        );

        CREATE TABLE undecryptable (
            event_id TEXT PRIMARY KEY,
            room_id TEXT NOT NULL,
            deadline DOUBLE PRECISION NOT NULL,
            source TEXT NOT NULL
        )
        """,
    )
    async with db.execute("SELECT key, value FROM kv ORDER BY key") as cur:
        rows = [(str(k), str(v)) for k, v in await cur.fetchall()]
    moved: list[str] = []
    for key, value in rows:
        if key.startswith(p := _V1_PREFIXES["banner_first"]):
            await db.execute(
                "INSERT INTO pending_banners (room_id, audience, content) VALUES (?, ?, ?)",
                (key[len(p):], "first_member", value),
            )
        elif key.startswith(p := _V1_PREFIXES["banner_patient"]):
            await db.execute(
                "INSERT INTO pending_banners (room_id, audience, content) VALUES (?, ?, ?)",
                (key[len(p):], "patient", value),
            )
        elif key.startswith(p := _V1_PREFIXES["reinvite"]):
            room_id, member = _split_member(key[len(p):])
            await db.execute(
                "INSERT INTO reinvites (room_id, member_id) VALUES (?, ?)", (room_id, member)
            )
        elif key.startswith(p := _V1_PREFIXES["warned"]):
            room_id, rest = _split_member(key[len(p):])
            user_id, _, device_id = rest.rpartition(":")
            await db.execute(
                "INSERT INTO device_warnings (room_id, user_id, device_id) VALUES (?, ?, ?)",
                (room_id, user_id, device_id),
            )
        elif key.startswith(p := _V1_PREFIXES["undecryptable"]):
            pending = json.loads(value)
            await db.execute(
                "INSERT INTO undecryptable (event_id, room_id, deadline, source) VALUES (?, ?, ?, ?)",
                (key[len(p):], pending["room_id"], float(pending["deadline"]), json.dumps(pending["source"])),
            )
        else:
            continue
        moved.append(key)
    for key in moved:
        await db.execute("DELETE FROM kv WHERE key = ?", (key,))


# Ordered: index i migrates from version i to i + 1. Append, never edit a released one.
MIGRATIONS: list[Migration] = [_v1, _v2]
LATEST = len(MIGRATIONS)
