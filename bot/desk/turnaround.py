"""When the desk speaks on its own: the morning digest and reminders about old requests.

Pure functions of the clock, the calendar and what was already sent, so a test can move time.
- Digest: on business days, once, in the morning window (from the configured local time, for
  MORNING_WINDOW), if anything is pending. A bot that was down all the window skips that day's.
- Reminder: once per request, in the first business-morning window when it has been pending for
  more than N business days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.desk.calendar import BusinessCalendar

MORNING_WINDOW = dt.timedelta(hours=2)


class PendingRequest(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def created_at(self) -> float: ...  # Unix time


@dataclass(frozen=True)
class Turnaround:
    calendar: BusinessCalendar
    zone: ZoneInfo
    digest_time: dt.time
    reminder_business_days: int

    def local(self, now: dt.datetime) -> dt.datetime:
        return now.astimezone(self.zone)

    def local_day(self, timestamp: float) -> dt.date:
        return dt.datetime.fromtimestamp(timestamp, self.zone).date()

    def morning_open(self, now: dt.datetime) -> bool:
        """A business day, within MORNING_WINDOW from the digest time (local)."""
        local = self.local(now)
        start = dt.datetime.combine(local.date(), self.digest_time, tzinfo=self.zone)
        return self.calendar.is_business_day(local.date()) and start <= local < start + MORNING_WINDOW

    def digest_due(self, now: dt.datetime, last_digest_day: dt.date | None, pending: int) -> bool:
        return pending > 0 and self.morning_open(now) and last_digest_day != self.local(now).date()

    def business_age(self, request: PendingRequest, now: dt.datetime) -> int:
        return self.calendar.business_days_after(self.local_day(request.created_at), self.local(now).date())

    def overdue(self, request: PendingRequest, now: dt.datetime) -> bool:
        return self.business_age(request, now) > self.reminder_business_days

    def reminders_due(self, now: dt.datetime, pending: Iterable[PendingRequest], reminded: set[int]) -> list[PendingRequest]:
        """Overdue requests not reminded yet, oldest first (none outside business mornings)."""
        if not self.morning_open(now):
            return []
        due = [r for r in pending if r.id not in reminded and self.overdue(r, now)]
        return sorted(due, key=lambda r: (r.created_at, r.id))

    def next_wake(self, now: dt.datetime) -> dt.datetime:
        """The next digest time (aware, UTC) strictly after `now`, on a business day."""
        local = self.local(now)
        day = local.date()
        while True:
            at = dt.datetime.combine(day, self.digest_time, tzinfo=self.zone)
            if at > local and self.calendar.is_business_day(day):
                return at.astimezone(dt.timezone.utc)
            day += dt.timedelta(days=1)


def oldest_first(requests: Sequence[PendingRequest]) -> list[PendingRequest]:
    return sorted(requests, key=lambda r: (r.created_at, r.id))
