"""`carebot db migrate-to-postgres`: copy the SQLite store into PostgreSQL, then prove it.

Every table of the store (requests, audit trail, rooms, outbox, workflow tables, the sync
token…) is copied in one PostgreSQL transaction into an empty schema migrated to the same
version, identity sequences are moved past the copied ids, and each table is verified: same
row count and same SHA-256 over its rows (values normalised: text, integers, floats by their
repr, NULL), on both sides. The SQLite file is not changed; keep it as a backup.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from bot.config import Config, load_config
from bot.db import SQLITE_FILE, schema_for
from bot.db.database import PostgresDatabase, SqliteDatabase, StoreError, redact_url
from bot.db.upgrade import Migration, upgrade
from bot.yamlutil import ConfigErrors


@dataclass(frozen=True)
class TableCheck:
    table: str
    rows: int
    source_sha256: str
    target_sha256: str

    @property
    def ok(self) -> bool:
        return self.source_sha256 == self.target_sha256


def _norm(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return value


def table_hash(rows: list[tuple[Any, ...]]) -> str:
    """Order-independent SHA-256 of rows: each row as canonical JSON, sorted."""
    lines = sorted(json.dumps([_norm(v) for v in row], ensure_ascii=False, separators=(",", ":")) for row in rows)
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode())
        digest.update(b"\n")
    return digest.hexdigest()


async def _columns_sqlite(db: SqliteDatabase, table: str) -> list[str]:
    return [str(r[1]) for r in await db.fetch(f'PRAGMA table_info("{table}")')]


async def _column_types_pg(db: PostgresDatabase, table: str) -> dict[str, str]:
    rows = await db.fetch(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
        db.schema, table,
    )
    return {str(r[0]): str(r[1]) for r in rows}


def _coerce(value: Any, pg_type: str) -> Any:
    """A SQLite value (loosely typed) as the PostgreSQL column's type wants it."""
    if value is None:
        return None
    if pg_type in ("bigint", "integer", "smallint"):
        return int(value)
    if pg_type in ("double precision", "real", "numeric"):
        return float(value)
    if pg_type == "boolean":
        return bool(value)
    if pg_type == "bytea":
        return bytes(value) if not isinstance(value, str) else value.encode()
    return value if isinstance(value, str) else str(value)


async def copy_store(
    source: SqliteDatabase, target: PostgresDatabase, migrations: Sequence[Migration] | None = None
) -> list[TableCheck]:
    """Copy every table of `source` into the empty `target`; returns the per-table checks."""
    if migrations is None:
        from bot.store import MIGRATIONS as migrations
    await upgrade(source, migrations)
    await upgrade(target, migrations)
    tables = await source.tables()
    missing = sorted(set(tables) - set(await target.tables()))
    if missing:
        raise StoreError(f"tables {missing} of {source.location} have no counterpart in PostgreSQL; upgrade carebot.")
    for table in tables:
        if await target.fetchval(f'SELECT count(*) FROM "{table}"'):
            raise StoreError(
                f"the target {target.location} already holds rows in '{table}'. Copy into an empty schema "
                "(--schema NAME, or drop the schema first); nothing was copied."
            )
    plan: list[tuple[str, list[str], list[tuple[Any, ...]]]] = []
    for table in tables:
        columns = await _columns_sqlite(source, table)
        quoted = ", ".join(f'"{c}"' for c in columns)
        rows = [tuple(r) for r in await source.fetch(f'SELECT {quoted} FROM "{table}"')]
        plan.append((table, columns, rows))
    async with target.transaction():
        for table, columns, rows in plan:
            types = await _column_types_pg(target, table)
            records = [tuple(_coerce(v, types.get(c, "text")) for v, c in zip(row, columns)) for row in rows]
            if records:
                await target.copy_rows(table, columns, records)
            for column, kind in types.items():
                identity = await target.fetchval(
                    "SELECT is_identity FROM information_schema.columns WHERE table_schema = $1 "
                    "AND table_name = $2 AND column_name = $3",
                    target.schema, table, column,
                )
                if identity == "YES" and records:
                    await target.fetchval(
                        f"SELECT setval(pg_get_serial_sequence('{target.schema}.{table}', '{column}'), "
                        f'(SELECT max("{column}") FROM "{table}"))'
                    )
    checks = []
    for table, columns, rows in plan:
        quoted = ", ".join(f'"{c}"' for c in columns)
        copied = [tuple(r) for r in await target.fetch(f'SELECT {quoted} FROM "{table}"')]
        types = await _column_types_pg(target, table)
        expected = [tuple(_coerce(v, types.get(c, "text")) for v, c in zip(row, columns)) for row in rows]
        if len(copied) != len(rows):
            checks.append(TableCheck(table, len(rows), table_hash(expected), f"{len(copied)} rows"))
            continue
        checks.append(TableCheck(table, len(rows), table_hash(expected), table_hash(copied)))
    return checks


async def _migrate(config: Config, url: str, schema: str, out: TextIO, err: TextIO) -> int:
    path = Path(config.storage.path) / SQLITE_FILE
    if not path.exists():
        print(f"carebot db migrate-to-postgres: no SQLite store at {path} (storage.path in {config.source_file}).", file=err)
        return 1
    source = await SqliteDatabase.open(path)
    try:
        target = await PostgresDatabase.open(url, schema)
    except BaseException:
        await source.close()
        raise
    try:
        checks = await copy_store(source, target)
    finally:
        await source.close()
        await target.close()
    for c in checks:
        mark = "OK" if c.ok else "MISMATCH"
        print(f"{c.table}: {c.rows} rows, sha256 {c.source_sha256[:16]}… → {c.target_sha256[:16]}… {mark}", file=out)
    if not all(c.ok for c in checks):
        print("The copy does not match the SQLite store: do not switch; report this with the lines above.", file=err)
        return 1
    print(
        f"Copied {sum(c.rows for c in checks)} rows into {redact_url(url)} (schema {schema}), verified. Now set "
        f"storage.database: \"{redact_url(url)}\"" + (f" and storage.schema: {schema}" if schema != schema_for(config.bot.user_id) else "")
        + f" in {config.source_file} and restart carebot; keep {path} as a backup.",
        file=out,
    )
    return 0


def main_migrate_to_postgres(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    try:
        config = load_config(args.config)
    except ConfigErrors as exc:
        for e in exc.errors:
            print(e, file=err)
        return 1
    if not args.to.startswith(("postgresql://", "postgres://")):
        print(f"--to: '{args.to}' is not a PostgreSQL URL. Write it like postgresql://carebot@db.clinic.example/carebot.", file=err)
        return 1
    schema = args.schema or config.storage.db_schema or schema_for(config.bot.user_id)
    try:
        return asyncio.run(_migrate(config, args.to, schema, out, err))
    except StoreError as exc:
        print(f"carebot db migrate-to-postgres: {exc}", file=err)
        return 1


__all__ = ["TableCheck", "copy_store", "main_migrate_to_postgres", "table_hash"]
