"""The Store: opening and migrating the database, transactions, key/value bookkeeping and the
ids of handled events; the tables themselves are in workflows.py and care.py."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import aiosqlite

from bot.store.care import CareTables
from bot.store.schema import LATEST, MIGRATIONS, StoreError
from bot.store.workflows import WorkflowTables


class Store(WorkflowTables, CareTables):
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
