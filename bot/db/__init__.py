"""The bot's database: SQLite (embedded default) or PostgreSQL, one schema, one set of migrations.

`bot/db/dialect.py` holds every difference between the two; `database.py` the async API;
`upgrade.py` the migration runner; `claims.py` which bot serves which practitioner when
several share a PostgreSQL; `copy.py` the SQLite → PostgreSQL copy; `devpg.py` a throwaway
cluster for the tests and the benchmark.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.db.database import Database, PostgresDatabase, SqliteDatabase, StoreError

SQLITE_FILE = "carebot.db"


def schema_for(user_id: str) -> str:
    """The default PostgreSQL schema of a bot account: `carebot_` + its localpart, sanitised."""
    localpart = user_id[1:].split(":", 1)[0].lower()
    return ("carebot_" + re.sub(r"[^a-z0-9_]", "_", localpart))[:63]


async def open_database(storage_path: Path, database_url: str | None, schema: str) -> Database:
    """PostgreSQL when `storage.database` is set, else SQLite in `storage.path`."""
    if database_url:
        return await PostgresDatabase.open(database_url, schema)
    return await SqliteDatabase.open(storage_path / SQLITE_FILE)


__all__ = ["Database", "PostgresDatabase", "SqliteDatabase", "StoreError", "open_database", "schema_for"]
