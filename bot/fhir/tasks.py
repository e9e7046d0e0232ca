"""Renewal requests as FHIR R4 `Task`s (the contract in design.md), built and read with the
fhir.resources R4B `Task` model. Pure: no I/O.

The shape follows the NHS GP Connect "Prescriptions Management" pattern: identifier
`urn:carebot:renewal|R7`, `status: requested`, `intent: order`, code SNOMED CT 103742009
(renewal of prescription), `for` and `requester` the Patient, `owner` the Practitioner,
`focus` the MedicationRequest being renewed, `authoredOn`. Approve -> `completed` (the note in
`note`), deny -> `rejected` (the reason in `statusReason.text`), cancel -> `cancelled`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B.task import Task

from bot.care.renewals import format_id, parse_id

IDENTIFIER_SYSTEM = "urn:carebot:renewal"
SNOMED = "http://snomed.info/sct"
RENEWAL_CODE = "103742009"

# carebot request status <-> Task status
TASK_STATUS = {"pending": "requested", "approved": "completed", "denied": "rejected", "cancelled": "cancelled"}
REQUEST_STATUS = {v: k for k, v in TASK_STATUS.items()}
FINAL_TASK_STATUSES = ("completed", "rejected", "cancelled")


def if_none_exist(request_id: int) -> str:
    return f"identifier={IDENTIFIER_SYSTEM}|{format_id(request_id)}"


def new_task(
    request_id: int,
    patient_id: str,
    practitioner_id: str,
    medication: str,
    focus: str | None,
    authored_on: dt.datetime,
) -> dict[str, Any]:
    """The Task for a pending request (validated by the R4B model, returned as JSON)."""
    task: dict[str, Any] = {
        "resourceType": "Task",
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": format_id(request_id)}],
        "status": "requested",
        "intent": "order",
        "code": {"coding": [{"system": SNOMED, "code": RENEWAL_CODE, "display": "Renewal of prescription"}]},
        "description": medication,
        "for": {"reference": f"Patient/{patient_id}"},
        "requester": {"reference": f"Patient/{patient_id}"},
        "owner": {"reference": f"Practitioner/{practitioner_id}"},
        "authoredOn": authored_on.astimezone(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if focus:
        task["focus"] = {"reference": f"MedicationRequest/{focus}"}
    return dump(Task.model_validate(task))


def decided_task(current: dict[str, Any], status: str, note: str | None, when: dt.datetime, conflict_note: str | None = None) -> dict[str, Any]:
    """`current` (the Task as on the server) moved to the request's final `status`."""
    task = dict(current)
    task["status"] = TASK_STATUS[status]
    task["lastModified"] = when.astimezone(dt.timezone.utc).isoformat(timespec="seconds")
    notes = list(task.get("note") or [])
    if status == "approved" and note:
        notes.append({"text": note, "time": task["lastModified"]})
    if status == "denied" and note:
        task["statusReason"] = {"text": note}
    if conflict_note:
        notes.append({"text": conflict_note, "time": task["lastModified"]})
    if notes:
        task["note"] = notes
    return dump(Task.model_validate(task))


def dump(task: Task) -> dict[str, Any]:
    return task.model_dump(mode="json", by_alias=True, exclude_none=True)


@dataclass(frozen=True)
class TaskView:
    """What the bridge reads from a Task found on the server."""

    task_id: str
    version_id: str | None
    request_id: int
    status: str  # the Task status
    note: str | None  # the latest note (approve) or statusReason.text (reject)
    raw: dict[str, Any]

    @property
    def request_status(self) -> str | None:
        return REQUEST_STATUS.get(self.status)


def read_task(raw: dict[str, Any]) -> TaskView | None:
    """A carebot renewal Task as a TaskView; None when it is not one (or does not parse)."""
    try:
        task = Task.model_validate(raw)
    except ValueError:
        return None
    ident = next((i for i in task.identifier or [] if i.system == IDENTIFIER_SYSTEM and i.value), None)
    request_id = parse_id(ident.value) if ident is not None and ident.value else None
    if request_id is None or task.id is None:
        return None
    if task.status == "rejected":
        note = task.statusReason.text if task.statusReason and task.statusReason.text else None
    else:
        note = task.note[-1].text if task.note else None
    return TaskView(task.id, task.meta.versionId if task.meta else None, request_id, str(task.status), note, raw)
