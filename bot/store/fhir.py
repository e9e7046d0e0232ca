"""The bridge's tables (one store migration) and the Store methods that use them.

- `fhir_writes`: the durable write queue. One row per (request, kind): kind `create` (the Task
  for a pending request) or `decide` (its final status). A row is added in the same transaction
  as the request or decision it mirrors, so a crash never loses one; it is deleted once the
  server has it. Drained in (request id, create before decide) order.
- `fhir_tasks`: for each request mirrored, the Task's logical id, the version the bot last
  wrote or saw, and its status there: `If-Match` uses the version; the poller tells a change
  made by the clinic's software from the bot's own.
- `fhir_state`: the last good roster built from the server (JSON: roster ids, Matrix ids,
  names, treatments — medical data, like `requests`) and the poll cursors.

Plain SQL shared by SQLite and PostgreSQL: no AUTOINCREMENT; timestamps DOUBLE PRECISION
(PostgreSQL's REAL is 4 bytes, too coarse for a Unix time).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from bot.db import Database

CREATE, DECIDE = "create", "decide"


async def migrate(db: Database) -> None:
    for statement in (
        """CREATE TABLE fhir_writes (
            request_id INTEGER NOT NULL,
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            failed_at DOUBLE PRECISION,
            last_error TEXT,
            PRIMARY KEY (request_id, kind)
        )""",
        """CREATE TABLE fhir_tasks (
            request_id INTEGER PRIMARY KEY,
            task_id TEXT NOT NULL UNIQUE,
            version_id TEXT,
            status TEXT NOT NULL
        )""",
        """CREATE TABLE fhir_state (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            saved_at DOUBLE PRECISION NOT NULL
        )""",
    ):
        await db.execute(db.dialect.ddl(statement))


@dataclass(frozen=True)
class FhirWrite:
    request_id: int
    kind: str  # create | decide
    payload: dict[str, Any]
    attempts: int
    failed_at: float | None = None

    def due(self, now: float) -> bool:
        """A refused write is tried again after 1, 2, 4 … minutes (at most hourly)."""
        return self.failed_at is None or now - self.failed_at >= min(3600.0, 60.0 * 2 ** (self.attempts - 1))


@dataclass(frozen=True)
class TaskLink:
    request_id: int
    task_id: str
    version_id: str | None
    status: str


class FhirTables:
    db: Database

    # -- write queue ---------------------------------------------------------------------
    async def queue_fhir_write(self, request_id: int, kind: str, payload: dict[str, Any]) -> None:
        """Queue one write; a second one of the same kind for the same request is ignored."""
        await self.db.execute(
            "INSERT INTO fhir_writes (request_id, kind, payload, created_at) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (request_id, kind) DO NOTHING",
            request_id, kind, json.dumps(payload), time.time(),
        )

    async def fhir_writes(self, limit: int = 100) -> list[FhirWrite]:
        rows = await self.db.fetch(
            "SELECT request_id, kind, payload, attempts, failed_at FROM fhir_writes "
            "ORDER BY request_id, CASE kind WHEN 'create' THEN 0 ELSE 1 END LIMIT $1",
            limit,
        )
        return [FhirWrite(int(r[0]), str(r[1]), dict(json.loads(r[2])), int(r[3]), r[4]) for r in rows]

    async def fhir_write_done(self, request_id: int, kind: str) -> None:
        await self.db.execute("DELETE FROM fhir_writes WHERE request_id = $1 AND kind = $2", request_id, kind)

    async def fhir_write_failed(self, request_id: int, kind: str, error: str, at: float | None = None) -> None:
        await self.db.execute(
            "UPDATE fhir_writes SET attempts = attempts + 1, failed_at = $1, last_error = $2 WHERE request_id = $3 AND kind = $4",
            float(time.time() if at is None else at), error[:500], request_id, kind,
        )

    async def fhir_queue_length(self) -> int:
        return int(await self.db.fetchval("SELECT COUNT(*) FROM fhir_writes") or 0)

    # -- tasks ---------------------------------------------------------------------------
    async def save_task_link(self, request_id: int, task_id: str, version_id: str | None, status: str) -> None:
        await self.db.execute(
            "INSERT INTO fhir_tasks (request_id, task_id, version_id, status) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (request_id) DO UPDATE SET task_id = excluded.task_id, "
            "version_id = excluded.version_id, status = excluded.status",
            request_id, task_id, version_id, status,
        )

    async def task_link(self, request_id: int) -> TaskLink | None:
        row = await self.db.fetchrow(
            "SELECT request_id, task_id, version_id, status FROM fhir_tasks WHERE request_id = $1", request_id
        )
        return None if row is None else TaskLink(int(row[0]), str(row[1]), row[2], str(row[3]))

    async def fhir_unmirrored(self) -> tuple[list[tuple[int, str, str, str]], list[int]]:
        """What the queue misses, whatever path made or decided the request: pending requests
        with no Task and no create queued (id, patient, practitioner, medication), and
        decided requests whose Task is still `requested` with no decide queued (ids)."""
        rows = await self.db.fetch(
            "SELECT r.id, r.patient_id, r.practitioner_id, r.medication FROM requests r "
            "LEFT JOIN fhir_tasks t ON t.request_id = r.id "
            "LEFT JOIN fhir_writes w ON w.request_id = r.id AND w.kind = 'create' "
            "WHERE r.status = 'pending' AND t.request_id IS NULL AND w.request_id IS NULL ORDER BY r.id"
        )
        missing = [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]
        rows = await self.db.fetch(
            "SELECT r.id FROM requests r JOIN fhir_tasks t ON t.request_id = r.id "
            "LEFT JOIN fhir_writes w ON w.request_id = r.id AND w.kind = 'decide' "
            "WHERE r.status IN ('approved', 'denied', 'cancelled') AND t.status = 'requested' "
            "AND w.request_id IS NULL ORDER BY r.id"
        )
        undecided = [int(r[0]) for r in rows]
        return missing, undecided

    # -- snapshot and cursors ------------------------------------------------------------
    async def save_fhir_state(self, name: str, value: Any) -> None:
        await self.db.execute(
            "INSERT INTO fhir_state (name, value, saved_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value, saved_at = excluded.saved_at",
            name, json.dumps(value), time.time(),
        )

    async def fhir_state(self, name: str) -> tuple[Any, float] | None:
        row = await self.db.fetchrow("SELECT value, saved_at FROM fhir_state WHERE name = $1", name)
        return None if row is None else (json.loads(row[0]), float(row[1]))
