"""What the store hands out: plain, frozen records."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Request:
    id: int
    event_id: str | None
    room_id: str
    patient_id: str
    practitioner_id: str
    medication: str
    medication_key: str
    status: str
    rules: tuple[str, ...]
    note: str | None
    created_at: float
    decided_at: float | None
    decided_by: str | None


@dataclass(frozen=True)
class OutboxItem:
    id: int
    txn_id: str
    room_id: str
    event_type: str
    content: dict[str, Any]


@dataclass(frozen=True)
class Undecryptable:
    event_id: str
    room_id: str
    deadline: float
    source: dict[str, Any]


@dataclass(frozen=True)
class RoomRecord:
    room_id: str
    patient_id: str
    practitioner_id: str
    state: str


def _request(row: Any) -> Request:  # a row of `requests` from either engine
    return Request(
        id=row["id"],
        event_id=row["event_id"],
        room_id=row["room_id"],
        patient_id=row["patient_id"],
        practitioner_id=row["practitioner_id"],
        medication=row["medication"],
        medication_key=row["medication_key"],
        status=row["status"],
        rules=tuple(json.loads(row["rules"])),
        note=row["note"],
        created_at=row["created_at"],
        decided_at=row["decided_at"],
        decided_by=row["decided_by"],
    )
