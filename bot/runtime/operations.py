"""What operators see and rely on, wired into a run: the /metrics, /healthz and /readyz
endpoints (bot/ops) fed by the runtime's events, and the claim of this bot's practitioners
when several bots share one PostgreSQL (bot/db/claims.py)."""

from __future__ import annotations

import structlog

from bot.care.service import CareContext
from bot.config import Config
from bot.db.claims import claim
from bot.db.database import PostgresDatabase
from bot.ops import Metrics, OpsServer, Readiness
from bot.store import Store
from bot.yamlutil import ConfigErrors

log = structlog.get_logger("carebot")


class Operations:
    """Metrics and readiness of one run; the HTTP endpoints only when `metrics.listen` is set."""

    def __init__(self, config: Config, store: Store) -> None:
        self.metrics = Metrics(store.ops_snapshot)
        self.readiness = Readiness()
        self._server = OpsServer(self.metrics, self.readiness, config.metrics.listen) if config.metrics.listen else None

    @property
    def port(self) -> int | None:
        return None if self._server is None else self._server.port

    async def start(self) -> None:
        if self._server is not None:
            await self._server.start()

    async def stop(self) -> None:
        self.readiness.set(stopping=True)
        if self._server is not None:
            await self._server.stop()

    # -- hooks for the runtime ------------------------------------------------------------
    def synced(self) -> None:
        self.metrics.synced()
        if not self.readiness.synced:
            self.readiness.set(synced=True)

    def reconciled(self, seconds: float) -> None:
        self.metrics.reconciled(seconds)
        if not self.readiness.reconciled:
            self.readiness.set(reconciled=True)
        log.info("rooms.reconciled", seconds=round(seconds, 3))

    def command(self, name: str) -> None:
        self.metrics.command(name)


async def claim_practitioners(config: Config, store: Store, care: CareContext) -> None:
    """Check `bot.practitioners` against the roster, and on PostgreSQL claim them for this bot
    (ClaimConflict, a StoreError, when another bot serves one of them)."""
    served = config.bot.practitioners
    if served is not None:
        unknown = [p for p in served if care.roster.practitioner(p) is None]
        if unknown:
            raise ConfigErrors([config.error(
                "bot.practitioners",
                f"{', '.join(repr(u) for u in unknown)} not in the roster ({config.roster.path}). "
                "Use practitioner ids from the roster's 'practitioners:' list.",
            )])
    if not isinstance(store.db, PostgresDatabase):
        return  # SQLite: one process, nothing shared
    ids = [p.id for p in care.roster.practitioners]
    where = f"{config.source_file}: bot.practitioners"
    await claim(store.db, config.bot.user_id, ids, where)
    log.info("practitioners.claimed", count=len(ids))
