"""Drains the durable write queue (`fhir_writes`) to the FHIR server, in order.

- `create`: conditional create of the request's Task (`If-None-Exist` on its identifier), so a
  retry after a crash or a timeout finds the Task made the first time instead of making two.
- `decide`: read the Task, move it to the request's final status, write it with `If-Match`
  on the version just read (a 412 means someone changed it in between: read again). If the
  clinic's software had already put a *different* final status on the Task, carebot's
  decision was the first one recorded (the patient has been told it), so it is written back
  with a note that says what happened, and `on_conflict` tells the practitioner.

The queue stops at the first `FhirUnavailable` (order is kept; the next drain resumes there).
A write the server refuses (`FhirRejected`) is counted and retried at later drains; the others
go on. Logs carry request ids and error kinds only.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from bot.care.matching import match_treatment
from bot.care.renewals import format_id, parse_id
from bot.faults import crash_point
from bot.fhir.client import FhirClient, FhirRejected, FhirUnavailable, VersionConflict
from bot.store.fhir import CREATE, DECIDE
from bot.fhir.tasks import FINAL_TASK_STATUSES, TASK_STATUS, decided_task, if_none_exist, new_task, read_task

log = structlog.get_logger(__name__)

Conflict = Callable[[Any, str], Awaitable[None]]  # (request, the other status as a request status)

CONFLICT_NOTE = (
    "carebot: this renewal request had already been answered in the secure messaging ({ours}) "
    "before this Task was set to {theirs}; the patient was told {ours}. Please check with the practitioner."
)


class TaskWriter:
    def __init__(self, client: FhirClient, store: Any, on_conflict: Conflict | None = None, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.store = store
        self.on_conflict = on_conflict
        self.clock = clock
        self.deferred = False  # the last drain stopped because the server could not be reached

    async def drain(self) -> int:
        """Write what is queued, oldest request first; returns how many writes the server took."""
        done = 0
        self.deferred = False
        while True:
            batch = await self.store.fhir_writes(limit=100)
            progressed = False
            for w in batch:
                if not w.due(self.clock()):
                    continue  # refused recently: later
                req = await self.store.request(w.request_id)
                try:
                    if req is None:  # purged by retention: nothing left to mirror
                        pass
                    elif w.kind == CREATE:
                        await self._create(req, w.payload)
                    else:
                        await self._decide(req, w.payload)
                except FhirUnavailable as exc:
                    log.info("fhir.write.deferred", request_id=format_id(w.request_id), kind=w.kind, error=type(exc).__name__)
                    self.deferred = True
                    return done
                except (FhirRejected, ValueError) as exc:  # refused, or a Task our models refuse to send
                    log.warning("fhir.write.refused", request_id=format_id(w.request_id), kind=w.kind, error=type(exc).__name__, attempts=w.attempts + 1)
                    async with self.store.transaction():
                        await self.store.fhir_write_failed(w.request_id, w.kind, str(exc), at=self.clock())
                    continue
                async with self.store.transaction():
                    await self.store.fhir_write_done(w.request_id, w.kind)
                done += 1
                progressed = True
            if not progressed or len(batch) < 100:  # (a full batch of refused rows waits too)
                return done

    async def _create(self, req: Any, payload: dict[str, Any]) -> None:
        task = new_task(
            req.id, req.patient_id, req.practitioner_id, req.medication, payload.get("focus"),
            dt.datetime.fromtimestamp(req.created_at, dt.timezone.utc),
        )
        raw, created = await self.client.create_once(task, if_none_exist(req.id))
        crash_point("fhir_task_created")
        view = read_task(raw)
        async with self.store.transaction():
            await self.store.save_task_link(req.id, raw["id"], view.version_id if view else None, raw.get("status", "requested"))
        log.info("fhir.task.created" if created else "fhir.task.found", request_id=format_id(req.id))

    async def _decide(self, req: Any, payload: dict[str, Any]) -> None:
        wanted = TASK_STATUS.get(req.status)
        if wanted is None or req.status == "pending":
            return  # nothing final to write
        link = await self.store.task_link(req.id)
        if link is None:  # its create was refused earlier, or never queued: make it now
            await self._create(req, payload)
            link = await self.store.task_link(req.id)
        for _attempt in range(3):
            current = await self.client.read("Task", link.task_id)
            view = read_task(current)
            if view is None:
                raise FhirRejected(f"Task/{link.task_id} is not a carebot renewal Task any more")
            if view.status == wanted:
                break
            conflict = view.status in FINAL_TASK_STATUSES
            note = CONFLICT_NOTE.format(ours=wanted, theirs=view.status) if conflict else None
            try:
                written = await self.client.update(
                    decided_task(current, req.status, req.note, dt.datetime.fromtimestamp(self.clock(), dt.timezone.utc), note),
                    view.version_id,
                )
            except VersionConflict:
                continue  # changed between our read and our write: read it again
            view = read_task(written)
            if conflict:
                log.warning("fhir.task.conflict", request_id=format_id(req.id), kept=wanted, other=current.get("status"))
                if self.on_conflict is not None and not payload.get("conflict"):  # else already told
                    await self.on_conflict(req, str(current.get("status")))
            break
        else:
            raise FhirUnavailable("the Task kept changing under us; will try again")
        async with self.store.transaction():
            await self.store.save_task_link(req.id, link.task_id, view.version_id if view else None, wanted)
        log.info("fhir.task.updated", request_id=format_id(req.id), status=wanted)


async def queue_for_replies(store: Any, build: Any, pair: Any, renewals: list[tuple[str, str]]) -> None:
    """Queue the writes for the requests the replies speak of: (request id "R7", status).

    Called inside the transaction that records the request or the decision, so the queue row
    commits with it. A pending request gets a `create` (with the matched MedicationRequest as
    its focus), a final one a `decide`; a duplicate row is ignored, and a decide that finds the
    Task already in that status writes nothing.
    """
    for rid, status in renewals:
        request_id = parse_id(rid)
        if request_id is None or status == "ineligible":
            continue
        if status == "pending":
            req = await store.request(request_id)
            focus = None
            if build is not None and req is not None:
                treatment = match_treatment(pair, req.medication)  # the same matching as the policies
                focus = build.focus_for(pair.patient.id, pair.practitioner.id, treatment.name if treatment else req.medication)
            await store.queue_fhir_write(request_id, CREATE, {"focus": focus})
        else:
            link = await store.task_link(request_id)
            if link is None or link.status != TASK_STATUS.get(status):
                await store.queue_fhir_write(request_id, DECIDE, {})
