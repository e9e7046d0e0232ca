"""What the desk says, as plain text in the practitioner's language (no Matrix here).

The runtime turns these into m.notice contents (bot.desk.content); every text is for the
practitioner only — patients never read the desk.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from babel.dates import format_date, format_timedelta

from bot.care import commands as cmd
from bot.care.renewals import format_id
from bot.care.texts import Texts
from bot.desk.absence import Absence
from bot.desk.turnaround import Turnaround

_BABEL = {"fr": "fr_FR", "en": "en_GB"}
# Lines in one listing: an encrypted event must stay under the homeserver's 64 KiB limit, and a
# practitioner reads the oldest first anyway; the count of the others is given.
MAX_LISTED = 60


def long_date(day: dt.date, locale: str) -> str:
    """"jeudi 24 décembre 2026" / "Thursday, 24 December 2026"."""
    return format_date(day, format="full", locale=_BABEL[locale])


def age(created_at: float, now: dt.datetime, locale: str) -> str:
    """"3 jours" / "5 hours" (at least a minute)."""
    seconds = max(60.0, now.timestamp() - created_at)
    return format_timedelta(dt.timedelta(seconds=seconds), locale=_BABEL[locale], threshold=1.0)


@dataclass(frozen=True)
class Line:
    """One pending request as the desk shows it."""

    request: Any  # bot.store.Request: id, patient_id, medication, created_at, room_id, event_id
    patient_name: str
    link: str


@dataclass(frozen=True)
class DeskText:
    texts: Texts
    locale: str

    def get(self, key: str, **params: object) -> str:
        return self.texts.get(key, self.locale, **params)

    def help(self) -> str:
        other = "en" if self.locale == "fr" else "fr"
        lines = [self.get("desk_help_intro")]
        for name in cmd.DESK_COMMANDS:
            s = cmd.spec(name)
            key = "cmd_pending_desk" if name == "pending" else s.help_key
            lines.append(f"• {cmd.usage(name, self.locale)} — {self.get(key)} (!{s.display_name(other)})")
        return "\n".join(lines)

    def new_request(self, line: Line) -> str:
        r = line.request
        return self.get("desk_new_request", id=format_id(r.id), patient=line.patient_name, medication=r.medication, link=line.link)

    def reminder(self, line: Line, days: int) -> str:
        r = line.request
        return self.get("desk_reminder", id=format_id(r.id), patient=line.patient_name, medication=r.medication, days=days, link=line.link)

    def emergency(self, patient_name: str, link: str) -> str:
        return self.get("desk_emergency", patient=patient_name, link=link)

    def listing(self, lines: Sequence[Line], now: dt.datetime, turnaround: Turnaround, *, header_key: str = "desk_pending_header", absence: Absence | None = None) -> str:
        """All pending requests, oldest first, with the patient's name and the request's age."""
        out: list[str] = []
        if absence is not None and absence.active(turnaround.local(now).date()):
            out.append(self.get("desk_absent_state", date=long_date(absence.back_on, self.locale)))
        if not lines:
            out.append(self.get("desk_pending_empty"))
            return "\n".join(out)
        ordered = sorted(lines, key=lambda ln: (ln.request.created_at, ln.request.id))
        out.append(self.get(header_key, count=len(ordered)))
        for ln in ordered[:MAX_LISTED]:
            r = ln.request
            item = self.get("desk_pending_item", id=format_id(r.id), patient=ln.patient_name, medication=r.medication, age=age(r.created_at, now, self.locale))
            if turnaround.overdue(r, now):
                item += self.get("desk_overdue_mark", days=turnaround.reminder_business_days)
            out.append(item)
        if len(ordered) > MAX_LISTED:
            out.append(self.get("desk_pending_more", more=len(ordered) - MAX_LISTED))
        return "\n".join(out)

    def decided(self, line: Line, status: str) -> str:
        r = line.request
        return self.get("desk_decided", id=format_id(r.id), patient=line.patient_name, medication=r.medication, state=self.get("state_" + status), link=line.link)

    def absence_set(self, absence: Absence) -> str:
        text = self.get("desk_absent_set", date=long_date(absence.back_on, self.locale))
        if absence.message:
            text += "\n" + self.get("desk_absent_message", message=absence.message)
        return text

    def date_problem(self, problem: str, value: str, today: dt.date) -> str:
        if problem == "not_future":
            return self.get("desk_date_not_future", today=long_date(today, self.locale))
        if problem == "too_far":
            return self.get("desk_date_too_far")
        return self.get("desk_bad_date", value=value)


def absence_notice(texts: Texts, locale: str, practitioner_name: str, absence: Absence) -> str:
    """What a patient who writes during the absence reads (once a day)."""
    text = texts.get("absence_notice", locale, practitioner=practitioner_name, date=long_date(absence.back_on, locale))
    if absence.message:
        text += "\n" + texts.get("absence_notice_message", locale, practitioner=practitioner_name, message=absence.message)
    return text

