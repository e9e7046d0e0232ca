"""The Store: opening and migrating the database (SQLite or PostgreSQL, bot/db), transactions,
key/value bookkeeping and the ids of handled events; the tables themselves are in
workflows.py, care.py and ops.py."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from bot.db import Database, SqliteDatabase, open_database, schema_for
from bot.db.upgrade import upgrade
from bot.store.care import CareTables
from bot.store.desk import DeskTables
from bot.store.fhir import FhirTables
from bot.store.identities import IdentityTables
from bot.store.ops import OpsTables
from bot.store.records import OutboxItem
from bot.store.schema import MIGRATIONS
from bot.store.workflows import WorkflowTables


class Store(WorkflowTables, CareTables, IdentityTables, FhirTables, OpsTables, DeskTables):
    def __init__(self, db: Database) -> None:
        self.db = db
        self.path = getattr(db, "path", None)  # the SQLite file; None on PostgreSQL

    @classmethod
    async def open(cls, path: Path) -> "Store":
        """SQLite at `path` (created 0600), migrated to the latest schema."""
        return await cls.on(await SqliteDatabase.open(path))

    @classmethod
    async def on(cls, db: Database) -> "Store":
        """The store on an open database, migrated to the latest schema (closed on failure)."""
        store = cls(db)
        try:
            await upgrade(db, MIGRATIONS)
            await store._load_care_mirrors()
            store._load_desk_mirrors()
        except BaseException:
            await db.close()
            raise
        return store

    @classmethod
    async def for_config(cls, storage_path: Path, database_url: str | None, schema: str | None, bot_user_id: str) -> "Store":
        """`storage.database` (PostgreSQL) when set, else SQLite in `storage.path`."""
        db = await open_database(storage_path, database_url, schema or schema_for(bot_user_id))
        return await cls.on(db)

    async def schema_version(self) -> int:
        return await self.db.schema_version()

    async def close(self) -> None:
        await self.db.close()

    # -- transactions --------------------------------------------------------------------
    def transaction(self) -> contextlib.AbstractAsyncContextManager[None]:
        """`async with store.transaction():` — one transaction, rolled back on error."""
        return self.db.transaction()

    @property
    def waiting(self) -> int:
        """How many are waiting for the transaction lock (what tests and metrics look at)."""
        return self.db.waiting

    # -- key/value -----------------------------------------------------------------------
    async def get(self, key: str) -> str | None:
        value = await self.db.fetchval("SELECT value FROM kv WHERE key = $1", key)
        return None if value is None else str(value)

    async def set(self, key: str, value: str) -> None:
        await self.db.execute(
            "INSERT INTO kv (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            key, value,
        )

    async def items(self, prefix: str) -> list[tuple[str, str]]:
        # substr, not a range on text: PostgreSQL's collation may not order like bytes.
        rows = await self.db.fetch(
            "SELECT key, value FROM kv WHERE substr(key, 1, length($1)) = $1 ORDER BY key", prefix
        )
        return [(str(k), str(v)) for k, v in rows]

    async def delete(self, key: str) -> None:
        await self.db.execute("DELETE FROM kv WHERE key = $1", key)

    # -- events --------------------------------------------------------------------------
    async def is_processed(self, event_id: str) -> bool:
        return await self.db.fetchrow("SELECT 1 FROM processed_events WHERE event_id = $1", event_id) is not None

    async def claim_event(self, event_id: str, room_id: str) -> bool:
        """Mark the event handled, inside the transaction that handles it; False if it was
        already (one statement where `is_processed` then `mark_processed` take two)."""
        return await self.db.execute(
            "INSERT INTO processed_events (event_id, room_id, handled_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            event_id, room_id, time.time(),
        ) == 1

    async def mark_processed(self, event_id: str, room_id: str) -> None:
        await self.db.execute(
            "INSERT INTO processed_events (event_id, room_id, handled_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            event_id, room_id, time.time(),
        )
