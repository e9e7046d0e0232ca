"""A read-through cache for rows this process alone writes (rooms, desks, absences): read on
every message, written rarely. A value read from the database is kept only if no write of
that key began meanwhile, and every write drops the key at once and again when it commits
(`after_commit`), so what the cache holds is always what is committed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from bot.db import Database

K = TypeVar("K")
V = TypeVar("V")


class Mirror(Generic[K, V]):
    def __init__(self, db: Database) -> None:
        self._db = db
        self._values: dict[K, V] = {}
        self._dirty: set[K] = set()  # written in a transaction not (yet) committed: never cached
        self._writes: dict[K, int] = {}

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        if key in self._values:
            return self._values[key]
        writes = self._writes.get(key, 0)
        value = await load()
        if key not in self._dirty and self._writes.get(key, 0) == writes:
            self._values[key] = value  # no write overtook this read
        return value

    def written(self, key: K) -> None:
        """Call before writing `key`: the next reads go to the database until it commits."""

        def committed() -> None:
            self._dirty.discard(key)
            self._writes[key] = self._writes.get(key, 0) + 1
            self._values.pop(key, None)

        self._dirty.add(key)
        self._writes[key] = self._writes.get(key, 0) + 1
        self._values.pop(key, None)
        self._db.after_commit(committed)

    def forget(self) -> None:
        self._values.clear()
