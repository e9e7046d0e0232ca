"""One small async database API over aiosqlite (the embedded default) and asyncpg (PostgreSQL).

    await db.execute(sql, *args) -> rows changed
    await db.fetch(sql, *args) / fetchrow / fetchval
    async with db.transaction(): ...      # one transaction; nested calls in it use it
    await db.script(ddl)                   # schema statements separated by blank lines

Rows read like mappings and tuples on both (`row["id"]`, `row[0]`). SQL is written once with
`$1` placeholders and SQLite type names; `bot/db/dialect.py` translates. Transactions of one
process are serialised (as SQLite's `BEGIN IMMEDIATE` does), so read-then-write logic keeps
the meaning it has on SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from bot.db.dialect import POSTGRES, SQLITE, Dialect

Row = Any  # aiosqlite.Row or asyncpg.Record: both index by name and position
SHARED_SCHEMA = "carebot_shared"  # what several bots on one PostgreSQL share (bot/db/claims.py)


class StoreError(Exception):
    """A database problem a clinic admin must act on; the message says what to do."""


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split("\n\n") if s.strip()]


class Database(ABC):
    dialect: Dialect
    location: str  # for messages: a file path, or the PostgreSQL URL without password

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        # Callbacks to run once the current transaction has committed (dropped on rollback).
        self._after: contextvars.ContextVar[list[Callable[[], None]] | None] = contextvars.ContextVar(
            f"after-{id(self)}", default=None
        )

    def serialized(self) -> asyncio.Lock:
        """`async with db.serialized():` waits until no transaction of this process is open."""
        return self._lock

    @property
    def waiting(self) -> int:
        """How many tasks wait for the transaction lock."""
        return len(getattr(self._lock, "_waiters", None) or ())

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` when the current transaction commits (at once outside a transaction):
        how in-memory mirrors of a table stay true to what is committed."""
        pending = self._after.get()
        if pending is None:
            callback()
        else:
            pending.append(callback)

    @contextlib.asynccontextmanager
    async def _collecting(self) -> AsyncIterator[list[Callable[[], None]]]:
        callbacks: list[Callable[[], None]] = []
        token = self._after.set(callbacks)
        try:
            yield callbacks
        finally:
            self._after.reset(token)

    @abstractmethod
    async def execute(self, sql: str, *args: Any) -> int: ...

    @abstractmethod
    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]

    @abstractmethod
    def transaction(self) -> contextlib.AbstractAsyncContextManager[None]: ...

    async def script(self, script: str) -> None:
        """Schema statements separated by blank lines, each translated by the dialect."""
        for statement in _statements(script):
            await self.execute(self.dialect.ddl(statement))

    async def append_only(self, table: str) -> None:
        for statement in self.dialect.append_only(table):
            await self.execute(statement)

    @abstractmethod
    async def schema_version(self) -> int: ...

    @abstractmethod
    async def set_schema_version(self, version: int) -> None: ...

    @abstractmethod
    async def tables(self) -> list[str]: ...

    @abstractmethod
    async def close(self) -> None: ...


class SqliteDatabase(Database):
    dialect = SQLITE

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        super().__init__()
        self._conn = conn
        self.path = path
        self.location = str(path)

    @classmethod
    async def open(cls, path: Path) -> "SqliteDatabase":
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fresh = not path.exists()
        conn = await aiosqlite.connect(path, isolation_level=None)
        if fresh:
            os.chmod(path, 0o600)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a committed transaction survives a crash of the process (kill -9);
        # after a power cut the last ones may be lost, together with the sync token stored in
        # the same database, so those events are fetched and handled again (replies keep
        # their transaction ids, and the homeserver drops the duplicates).
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA foreign_keys=ON")
        return cls(conn, path)

    async def execute(self, sql: str, *args: Any) -> int:
        cur = await self._conn.execute(self.dialect.query(sql), args)
        return cur.rowcount

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        # One trip to aiosqlite's thread (execute, fetchall and close the cursor there), not
        # three: a command's transaction makes a dozen reads.
        return list(await self._conn.execute_fetchall(self.dialect.query(sql), args))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self._lock, self._collecting() as callbacks:
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")
        for callback in callbacks:
            callback()

    async def schema_version(self) -> int:
        return int(await self.fetchval("PRAGMA user_version") or 0)

    async def set_schema_version(self, version: int) -> None:
        await self._conn.execute(f"PRAGMA user_version = {int(version)}")

    async def tables(self) -> list[str]:
        rows = await self.fetch(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
        return [str(r[0]) for r in rows]

    async def close(self) -> None:
        await self._conn.close()


class PostgresDatabase(Database):
    """A pool of asyncpg connections whose `search_path` is this bot's schema."""

    dialect = POSTGRES

    def __init__(self, pool: Any, url: str, schema: str) -> None:
        super().__init__()
        self._pool = pool
        self.schema = schema
        self.location = f"{redact_url(url)} (schema {schema})"
        self._tx: contextvars.ContextVar[Any | None] = contextvars.ContextVar(f"tx-{id(self)}", default=None)

    @classmethod
    async def open(cls, url: str, schema: str, max_connections: int = 4) -> "PostgresDatabase":
        import asyncpg

        try:
            admin = await asyncpg.connect(url)
        except (OSError, asyncpg.PostgresError) as exc:
            raise StoreError(
                f"cannot connect to PostgreSQL at {redact_url(url)}: {exc}. Check storage.database "
                "(host, port, database, user) and that the server accepts this client."
            ) from None
        try:
            await ensure_schema(admin, schema)
            await ensure_schema(admin, SHARED_SCHEMA)
        finally:
            await admin.close()
        pool = await asyncpg.create_pool(
            url, min_size=1, max_size=max_connections, server_settings={"search_path": schema}
        )
        return cls(pool, url, schema)

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[Any]:
        conn = self._tx.get()
        if conn is not None:
            yield conn
            return
        async with self._pool.acquire() as conn:
            yield conn

    async def execute(self, sql: str, *args: Any) -> int:
        async with self._conn() as conn:
            status = await conn.execute(self.dialect.query(sql), *args)
        last = str(status).rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self._conn() as conn:
            return list(await conn.fetch(self.dialect.query(sql), *args))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self._lock, self._collecting() as callbacks:
            async with self._pool.acquire() as conn, conn.transaction():
                token = self._tx.set(conn)
                try:
                    yield
                finally:
                    self._tx.reset(token)
        for callback in callbacks:
            callback()

    async def schema_version(self) -> int:
        async with self._conn() as conn:
            await conn.execute("CREATE TABLE IF NOT EXISTS carebot_version (version BIGINT NOT NULL)")
            value = await conn.fetchval("SELECT max(version) FROM carebot_version")
        return int(value or 0)

    async def set_schema_version(self, version: int) -> None:
        await self.execute("DELETE FROM carebot_version")
        await self.execute("INSERT INTO carebot_version (version) VALUES ($1)", int(version))

    async def tables(self) -> list[str]:
        rows = await self.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 "
            "AND table_type = 'BASE TABLE' AND table_name != 'carebot_version' ORDER BY table_name",
            self.schema,
        )
        return [str(r[0]) for r in rows]

    async def copy_rows(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        """Bulk insert (COPY) inside the current transaction."""
        async with self._conn() as conn:
            await conn.copy_records_to_table(table, columns=list(columns), records=rows, schema_name=self.schema)

    async def close(self) -> None:
        await self._pool.close()


async def ensure_schema(conn: Any, schema: str) -> None:
    """CREATE SCHEMA IF NOT EXISTS, tolerating another process doing the same at that moment."""
    import asyncpg

    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    except asyncpg.UniqueViolationError:
        pass


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))
