"""Periodic work: chores handed in by other components (a failed reconciliation, late keys),
then the retention of decided requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import structlog

from bot.store import Store

log = structlog.get_logger("carebot")

Chore = Callable[[], Awaitable[None]]
PERIOD_S = 2.0
PURGE_EVERY_S = 3600


class Housekeeping:
    def __init__(self, store: Store, retention_days: int | None, chores: Sequence[Chore]) -> None:
        self._store = store
        self._days = retention_days
        self._chores = tuple(chores)
        self._last_purge = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                for chore in self._chores:
                    await chore()
                await self._purge()
            except Exception:  # noqa: BLE001 - housekeeping must not stop the bot
                log.exception("housekeeping.failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=PERIOD_S)
            except asyncio.TimeoutError:
                pass

    async def _purge(self) -> None:
        days = self._days
        if not days or time.time() - self._last_purge <= PURGE_EVERY_S:
            return
        self._last_purge = time.time()
        async with self._store.transaction():
            purged = await self._store.purge_decided(days)
            if purged:
                await self._store.audit("bot", "retention.purged", None, {"requests": purged, "days": days})
        if purged:
            log.info("retention.purged", requests=purged)
