"""Absences: a practitioner away until a return day; patients told once a day while it lasts."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

MAX_DAYS_AHEAD = 366

_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_DMY = re.compile(r"(\d{1,2})[/.](\d{1,2})(?:[/.](\d{2}|\d{4}))?")

DateProblem = Literal["bad_date", "not_future", "too_far"]


@dataclass(frozen=True)
class Absence:
    practitioner_id: str
    back_on: dt.date  # the first day back: away while today < back_on
    message: str | None = None

    def active(self, today: dt.date) -> bool:
        return today < self.back_on


def parse_return_date(text: str, today: dt.date) -> dt.date | DateProblem:
    """The return day typed after !absent: "2026-12-24", "24/12/2026", "24.12.26", "24/12".

    Without a year, the next such day after today. Must be after today and within a year.
    """
    text = text.strip().rstrip(",.;:")
    day: dt.date | None = None
    try:
        if m := _ISO.fullmatch(text):
            day = dt.date(int(m[1]), int(m[2]), int(m[3]))
        elif m := _DMY.fullmatch(text):
            d, mo = int(m[1]), int(m[2])
            if m[3] is None:
                day = dt.date(today.year, mo, d)
                if day <= today:
                    day = dt.date(today.year + 1, mo, d)
            else:
                year = int(m[3]) + (2000 if len(m[3]) == 2 else 0)
                day = dt.date(year, mo, d)
    except ValueError:
        return "bad_date"
    if day is None:
        return "bad_date"
    if day <= today:
        return "not_future"
    if (day - today).days > MAX_DAYS_AHEAD:
        return "too_far"
    return day


def notice_due(absence: Absence | None, today: dt.date, last_told: dt.date | None) -> bool:
    """Should a patient who writes now be told about the absence? Once a day, while it lasts."""
    return absence is not None and absence.active(today) and last_told != today
