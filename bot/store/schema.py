"""Schema versions: a numbered list of migrations, each run once in its own transaction.

Statements stay within what SQLite and PostgreSQL both accept.
"""

from __future__ import annotations

import json

from bot.db import Database, StoreError
from bot.db.upgrade import Migration


async def _run(db: Database, script: str) -> None:
    """Schema statements separated by blank lines, written once for both engines
    (SQLite type names; bot/db/dialect.py adapts them for PostgreSQL)."""
    await db.script(script)


async def _v1(db: Database) -> None:
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
        )
        """,
    )
    # Triggers audit_no_update / audit_no_delete: the engine's own syntax (dialect.py).
    await db.append_only("audit")


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


async def _v2(db: Database) -> None:
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
    rows = [(str(k), str(v)) for k, v in await db.fetch("SELECT key, value FROM kv ORDER BY key")]
    moved: list[str] = []
    for key, value in rows:
        if key.startswith(p := _V1_PREFIXES["banner_first"]):
            await db.execute(
                "INSERT INTO pending_banners (room_id, audience, content) VALUES ($1, $2, $3)",
                key[len(p):], "first_member", value,
            )
        elif key.startswith(p := _V1_PREFIXES["banner_patient"]):
            await db.execute(
                "INSERT INTO pending_banners (room_id, audience, content) VALUES ($1, $2, $3)",
                key[len(p):], "patient", value,
            )
        elif key.startswith(p := _V1_PREFIXES["reinvite"]):
            room_id, member = _split_member(key[len(p):])
            await db.execute(
                "INSERT INTO reinvites (room_id, member_id) VALUES ($1, $2)",
                room_id, member,
            )
        elif key.startswith(p := _V1_PREFIXES["warned"]):
            room_id, rest = _split_member(key[len(p):])
            user_id, _, device_id = rest.rpartition(":")
            await db.execute(
                "INSERT INTO device_warnings (room_id, user_id, device_id) VALUES ($1, $2, $3)",
                room_id, user_id, device_id,
            )
        elif key.startswith(p := _V1_PREFIXES["undecryptable"]):
            pending = json.loads(value)
            await db.execute(
                "INSERT INTO undecryptable (event_id, room_id, deadline, source) VALUES ($1, $2, $3, $4)",
                key[len(p):], pending["room_id"], float(pending["deadline"]), json.dumps(pending["source"]),
            )
        else:
            continue
        moved.append(key)
    for key in moved:
        await db.execute(
                "DELETE FROM kv WHERE key = $1",
                key,
            )


async def _v3(db: Database) -> None:
    """Pinned identities: the first master key seen for each roster member, and a change of it
    (an identity reset) waiting for the clinic admin (`carebot trust accept`). And the Megolm
    sessions the bot got back from the very device that made them, at its request (nio records
    them as forwarded; carebot trusts them as first-hand, also after a restart)."""
    await _run(
        db,
        """
        CREATE TABLE identity_pins (
            user_id TEXT PRIMARY KEY,
            master_key TEXT NOT NULL,
            pinned_at DOUBLE PRECISION NOT NULL,
            new_master_key TEXT,
            changed_at DOUBLE PRECISION
        );

        CREATE TABLE owner_forwarded_sessions (
            room_id TEXT NOT NULL,
            sender_key TEXT NOT NULL,
            session_id TEXT NOT NULL,
            PRIMARY KEY (room_id, sender_key, session_id)
        )
        """,
    )


async def _v4_fhir(db: Database) -> None:
    from bot.store.fhir import migrate  # the clinic bridge's tables, described there

    await migrate(db)


async def _v5_desk(db: Database) -> None:
    """The practitioner desk: Spaces and desk rooms, absences, digests, reminders, devices."""
    await _run(
        db,
        """
        CREATE TABLE desks (
            practitioner_id TEXT PRIMARY KEY,
            desk_room_id TEXT UNIQUE,
            space_id TEXT UNIQUE,
            created_at DOUBLE PRECISION NOT NULL
        );

        CREATE TABLE space_children (
            space_id TEXT NOT NULL,
            room_id TEXT NOT NULL,
            PRIMARY KEY (space_id, room_id)
        );

        CREATE TABLE absences (
            practitioner_id TEXT PRIMARY KEY,
            back_on TEXT NOT NULL,
            message TEXT,
            set_at DOUBLE PRECISION NOT NULL
        );

        CREATE TABLE absence_notices (
            practitioner_id TEXT NOT NULL,
            patient_id TEXT NOT NULL,
            day TEXT NOT NULL,
            PRIMARY KEY (practitioner_id, patient_id)
        );

        CREATE TABLE desk_digests (
            practitioner_id TEXT PRIMARY KEY,
            day TEXT NOT NULL
        );

        CREATE TABLE desk_reminders (
            request_id INTEGER PRIMARY KEY,
            sent_at DOUBLE PRECISION NOT NULL
        );

        CREATE TABLE desk_devices (
            practitioner_id TEXT NOT NULL,
            device_id TEXT NOT NULL,
            PRIMARY KEY (practitioner_id, device_id)
        )
        """,
    )


# Ordered: index i migrates from version i to i + 1. Append, never edit a released one.
MIGRATIONS: list[Migration] = [_v1, _v2, _v3, _v4_fhir, _v5_desk]
LATEST = len(MIGRATIONS)
