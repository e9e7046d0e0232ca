"""A decision made in the clinic's software, applied as if typed in Matrix; first one wins.

`ClinicDecisions` is the poller's `apply`. In one store transaction it:
- request still pending: decides it through `CareService.decide_from_clinic` (the `!accepter` /
  `!refuser` path): the patient reads the decision in the pair room with `carebot.renewal`, the
  practitioner is told it came from the practice software;
- request already decided the same way: only notes the Task's new version;
- request already decided another way here (the patient was told that): keeps it, queues a
  write of it back onto the Task with a note saying what happened, and tells the practitioner.
`enqueue(room_id, pair, replies, key)` queues the replies in the runtime's outbox (same
transaction, idempotent on `key`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from bot.care.renewals import Status, format_id
from bot.care.service import Reply
from bot.store.fhir import DECIDE
from bot.fhir.tasks import REQUEST_STATUS, TaskView

log = structlog.get_logger(__name__)

Enqueue = Callable[[str, Any, list[Reply], str], Awaitable[None]]


class ClinicDecisions:
    def __init__(self, store: Any, service: Any, care: Callable[[], Any], enqueue: Enqueue, wake: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.service = service
        self.care = care
        self.enqueue = enqueue
        self.wake = wake  # the outbox, after the transaction

    async def __call__(self, view: TaskView) -> None:
        status = Status(view.request_status) if view.request_status else None
        async with self.store.transaction():
            req = await self.store.request(view.request_id)
            care = self.care()
            pair = care.roster.pair(req.patient_id, req.practitioner_id) if req is not None else None
            key = f"fhir-{view.task_id}-{view.version_id}"
            if req is None or pair is None or status not in (Status.APPROVED, Status.DENIED):
                log.info("fhir.task.decision_ignored", request_id=format_id(view.request_id))
            elif req.status == Status.PENDING.value:
                replies = await self.service.decide_from_clinic(care, pair, req.id, status, view.note, req.room_id)
                await self.enqueue(req.room_id, pair, replies, key)
            elif req.status != status.value:
                await self.enqueue(req.room_id, pair, [_conflict_notice(care, pair, req, status.value)], key)
                await self.store.queue_fhir_write(req.id, DECIDE, {"conflict": status.value})
                log.warning("fhir.task.conflict", request_id=format_id(req.id), kept=req.status, other=status.value)
            await self.store.save_task_link(view.request_id, view.task_id, view.version_id, view.status)
        self.wake()

    async def writer_conflict(self, req: Any, task_status: str) -> None:
        """The writer found the Task decided otherwise by the clinic after carebot's decision."""
        theirs = REQUEST_STATUS.get(task_status)
        care = self.care()
        pair = care.roster.pair(req.patient_id, req.practitioner_id)
        if pair is None or theirs is None:
            return
        async with self.store.transaction():
            await self.enqueue(req.room_id, pair, [_conflict_notice(care, pair, req, theirs)], f"fhir-conflict-{req.id}")
        self.wake()


def _conflict_notice(care: Any, pair: Any, req: Any, theirs: str) -> Reply:
    """For the practitioner: the practice software's later decision was not applied."""
    locale = care.locale_of(pair, pair.practitioner.matrix_id)
    text = care.texts.get(
        "clinic_conflict_for_practitioner",
        locale,
        id=format_id(req.id),
        theirs=care.texts.get("state_" + theirs, locale),
        ours=care.texts.get("state_" + req.status, locale),
    )
    return Reply("", for_practitioner=text)
