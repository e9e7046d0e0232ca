"""Versioned migrations, as mautrix-python's upgrade tables do: an ordered list, one
transaction each, a fresh database goes through all of them, a newer database is refused."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from bot.db.database import Database, StoreError

Migration = Callable[[Database], Awaitable[None]]


async def upgrade(db: Database, migrations: Sequence[Migration]) -> int:
    """Bring `db` to the latest version; returns it. Index i migrates from version i to i + 1."""
    latest = len(migrations)
    version = await db.schema_version()
    if version > latest:
        raise StoreError(
            f"The database {db.location} has schema version {version}, newer than this "
            f"carebot understands ({latest}). Upgrade carebot, or restore a backup made "
            "with this version; the database was left untouched."
        )
    for target in range(version + 1, latest + 1):
        async with db.transaction():
            await migrations[target - 1](db)
            await db.set_schema_version(target)
    return latest
