"""Renewal request lifecycle, pure: statuses, allowed transitions, request ids.

    pending -> approved | denied | cancelled      (decided requests are final)
    ineligible                                    (final from creation: the policies said no)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    CANCELLED = "cancelled"
    INELIGIBLE = "ineligible"

    @property
    def is_final(self) -> bool:
        return self is not Status.PENDING


_ALLOWED: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.APPROVED, Status.DENIED, Status.CANCELLED}),
}


class InvalidTransition(Exception):
    """A request cannot go from `current` to `target` (e.g. it was already decided)."""

    def __init__(self, current: Status, target: Status) -> None:
        self.current = current
        self.target = target
        super().__init__(f"cannot go from {current.value} to {target.value}")


def can_transition(current: Status, target: Status) -> bool:
    return target in _ALLOWED.get(current, frozenset())


def transition(current: Status, target: Status) -> Status:
    """Return `target` if allowed from `current`, else raise InvalidTransition."""
    if not can_transition(current, target):
        raise InvalidTransition(current, target)
    return target


def initial_status(eligible: bool) -> Status:
    """A new request is pending if the policies allow it, otherwise ineligible (final)."""
    return Status.PENDING if eligible else Status.INELIGIBLE


def format_id(n: int) -> str:
    """1 -> "R1"."""
    if n < 1:
        raise ValueError("request numbers start at 1")
    return f"R{n}"


_ID = re.compile(r"#?\s*r?\s*0*([1-9][0-9]{0,8})", re.IGNORECASE)


def parse_id(text: str) -> int | None:
    """"R7", "r7", "#R7", "R 7", "7" -> 7; anything else -> None. Trailing ':' ',' '.' tolerated."""
    m = _ID.fullmatch(text.strip().rstrip(":,.;"))
    return int(m.group(1)) if m else None


def renewal_content(request_id: int, status: Status, medication: str, rules: Iterable[str] = ()) -> dict[str, object]:
    """The contract `carebot.renewal` value carried by every bot message about a request."""
    status = Status(status)
    return {
        "id": format_id(request_id),
        "status": status.value,
        "medication": medication,
        "rules": list(rules) if status is Status.INELIGIBLE else [],
    }
