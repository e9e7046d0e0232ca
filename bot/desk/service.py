"""What the bot does with a message in a practitioner's desk, and the desk's half of what
happens in pair rooms. No Matrix here: answers are `DeskPost`s (for the desk) and
`PairAnswer`s (domain replies for a pair room, sent as if the decision were given there).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.care import commands as cmd
from bot.care.renewals import Status, format_id
from bot.care.roster import Pair, Practitioner
from bot.care.service import CareContext, CareService, Reply, shown
from bot.desk.absence import Absence, notice_due, parse_return_date
from bot.desk.compose import DeskText, Line, absence_notice
from bot.desk.links import permalink
from bot.desk.turnaround import Turnaround


class DeskStore(Protocol):
    async def request(self, request_id: int) -> Any: ...
    async def pending_for_practitioner(self, practitioner_id: str) -> list[Any]: ...
    async def room_for_pair(self, patient_id: str, practitioner_id: str) -> Any: ...
    async def absence(self, practitioner_id: str) -> Absence | None: ...
    async def set_absence(self, absence: Absence) -> None: ...
    async def clear_absence(self, practitioner_id: str) -> bool: ...
    async def absence_told(self, practitioner_id: str, patient_id: str) -> dt.date | None: ...
    async def set_absence_told(self, practitioner_id: str, patient_id: str, day: dt.date) -> None: ...
    async def audit(self, actor: str, action: str, subject: str | None = None, details: dict[str, Any] | None = None, policy_hash: str | None = None) -> None: ...


@dataclass(frozen=True)
class DeskPost:
    """A notice for the practitioner's desk."""

    text: str
    request: Any = None  # the request it is about: content carries carebot.renewal / carebot.patient
    status: str | None = None  # the request's status as told (default: its current status)
    link: str | None = None  # a permalink in the text, made clickable
    # An alert (a possible emergency): sent as m.text mentioning the practitioner, because the
    # default push rules silence every m.notice (.m.rule.suppress_notices comes before the
    # mention rules) — as a notice it would never ring.
    alert: bool = False


@dataclass(frozen=True)
class PairAnswer:
    """Domain replies for a pair room, as if the practitioner had written there."""

    room_id: str
    pair: Pair
    reply_to: str | None
    replies: tuple[Reply, ...]


@dataclass
class DeskOutcome:
    desk: list[DeskPost] = field(default_factory=list)
    pair: list[PairAnswer] = field(default_factory=list)


def is_elsewhere(parsed: object, role: str, request: Any, pair: Pair, room_id: str) -> bool:
    """A practitioner's !approve/!deny in a pair room about a request of another of their
    rooms. Requests of other practitioners are never located (they stay unknown)."""
    return (
        role == "practitioner"
        and isinstance(parsed, cmd.Command)
        and parsed.name in ("approve", "deny")
        and request is not None
        and request.practitioner_id == pair.practitioner.id
        and request.room_id != room_id
    )


@dataclass
class DeskService:
    store: DeskStore
    care_service: CareService
    turnaround: Turnaround
    via: str | None = None  # the bot's server, for matrix.to links (v12 room ids name none)

    def text(self, care: CareContext, practitioner: Practitioner, locale: str | None = None) -> DeskText:
        """Texts in `locale` (an answer: the language of the command word), else the practitioner's."""
        return DeskText(care.texts, locale or getattr(practitioner, "locale", None) or care.default_locale)

    async def lines(self, care: CareContext, practitioner: Practitioner, requests: list[Any]) -> list[Line]:
        out = []
        for r in requests:
            patient = care.roster.patient(r.patient_id)
            name = patient.display_name if patient is not None else r.patient_id
            out.append(Line(r, name, permalink(r.room_id, r.event_id, self.via)))
        return out

    async def listing(self, care: CareContext, practitioner: Practitioner, now: dt.datetime, header_key: str = "desk_pending_header", locale: str | None = None) -> str:
        pending = await self.store.pending_for_practitioner(practitioner.id)
        lines = await self.lines(care, practitioner, pending)
        absence = await self.store.absence(practitioner.id)
        return self.text(care, practitioner, locale).listing(lines, now, self.turnaround, header_key=header_key, absence=absence)

    # -- a message in the desk -------------------------------------------------------------
    async def handle(self, care: CareContext, practitioner: Practitioner, body: str, event_id: str, now: dt.datetime) -> DeskOutcome:
        out = DeskOutcome()
        parsed = cmd.parse(body, max_length=care.max_chars)
        if parsed is None:
            out.desk.append(DeskPost(self.text(care, practitioner).get("desk_not_a_command")))
            return out
        t = self.text(care, practitioner, parsed.locale)
        counted = parsed.name not in (None, "help")  # as in pair rooms: help and typos are free
        over, _ = self.care_service._flooding(care, practitioner.id, care.practitioner_per_minute) if counted else (False, False)  # noqa: SLF001 - one limiter per person
        if over:
            # Every refused command is told (a decision dropped in silence would be believed made),
            # in the practitioner's words, naming the command.
            out.desk.append(DeskPost(t.get("desk_flood_limited", command="!" + cmd.spec(str(parsed.name)).display_name(t.locale))))
            return out
        if isinstance(parsed, cmd.CommandError):
            out.desk.append(DeskPost(self.care_service._error_text(care, parsed, t.locale)))  # noqa: SLF001
            return out
        if parsed.name not in cmd.DESK_COMMANDS:
            out.desk.append(DeskPost(t.get("not_allowed_for_role", command="!" + cmd.spec(parsed.name).display_name(t.locale))))
            return out
        if parsed.name == "help":
            out.desk.append(DeskPost(t.help()))
        elif parsed.name == "pending":
            out.desk.append(DeskPost(await self.listing(care, practitioner, now, locale=t.locale)))
        elif parsed.name == "away":
            out.desk.append(await self._away(care, practitioner, parsed, now, t))
        elif parsed.name == "back":
            cleared = await self.store.clear_absence(practitioner.id)
            if cleared:
                await self.store.audit(practitioner.id, "desk.back")
            out.desk.append(DeskPost(t.get("desk_back" if cleared else "desk_not_away")))
        else:
            await self._decide(care, practitioner, parsed, body, event_id, out, t)
        return out

    async def _away(self, care: CareContext, practitioner: Practitioner, c: cmd.Command, now: dt.datetime, t: DeskText) -> DeskPost:
        today = self.turnaround.local(now).date()
        day = parse_return_date(c.until or "", today)
        if isinstance(day, str):
            return DeskPost(t.date_problem(day, shown(c.until or ""), today))
        absence = Absence(practitioner.id, day, shown(c.message) if c.message else None)
        await self.store.set_absence(absence)
        await self.store.audit(practitioner.id, "desk.away", None, {"back_on": day.isoformat()})
        return DeskPost(t.absence_set(absence))

    async def _decide(self, care: CareContext, practitioner: Practitioner, c: cmd.Command, body: str, event_id: str, out: DeskOutcome, t: DeskText) -> None:
        rid = format_id(c.request_id) if c.request_id else "?"
        req = await self.store.request(c.request_id) if c.request_id else None
        pair = care.roster.pair(req.patient_id, practitioner.id) if req is not None and req.practitioner_id == practitioner.id else None
        if req is None or pair is None:
            out.desk.append(DeskPost(t.get("desk_unknown_request", id=rid)))  # other practitioners' ids stay unknown
            return
        replies = await self.care_service.handle_message(care, pair, "practitioner", body, event_id, req.room_id, flood_checked=True)
        after = await self.store.request(req.id)
        line = (await self.lines(care, practitioner, [after]))[0]
        if req.status == Status.PENDING.value and after.status != Status.PENDING.value:
            # Decided now: the patient reads the answer in their room, under their request.
            out.pair.append(PairAnswer(req.room_id, pair, req.event_id, tuple(replies)))
            out.desk.append(DeskPost(t.decided(line, after.status), request=after, link=line.link))
        else:  # already decided, a usage problem…: for the practitioner only
            out.desk.extend(DeskPost(r.text, request=after, link=None) for r in replies)

    # -- the desk's half of pair-room traffic ----------------------------------------------
    async def new_request(self, care: CareContext, pair: Pair, request: Any) -> DeskPost:
        line = (await self.lines(care, pair.practitioner, [request]))[0]
        return DeskPost(self.text(care, pair.practitioner).new_request(line), request=request, link=line.link)

    def emergency(self, care: CareContext, pair: Pair, room_id: str, event_id: str) -> DeskPost:
        link = permalink(room_id, event_id, self.via)
        return DeskPost(self.text(care, pair.practitioner).emergency(pair.patient.display_name, link), link=link, alert=True)

    def elsewhere(self, care: CareContext, pair: Pair, request: Any, role_locale: str) -> Reply:
        link = permalink(request.room_id, request.event_id, self.via)
        return Reply(care.texts.get("request_elsewhere", role_locale, id=format_id(request.id), link=link))

    async def absence_reply(self, care: CareContext, pair: Pair, now: dt.datetime) -> Reply | None:
        """For a patient who writes while their practitioner is away: once a day."""
        absence = await self.store.absence(pair.practitioner.id)
        if absence is None:
            return None  # the usual case: no further database read
        today = self.turnaround.local(now).date()
        if not notice_due(absence, today, await self.store.absence_told(pair.practitioner.id, pair.patient.id)):
            return None
        await self.store.set_absence_told(pair.practitioner.id, pair.patient.id, today)
        locale = care.locale_of(pair, pair.patient.matrix_id)
        return Reply(absence_notice(care.texts, locale, pair.practitioner.display_name, absence))

    # -- on its own: digest and reminders ----------------------------------------------------
    async def digest(self, care: CareContext, practitioner: Practitioner, now: dt.datetime) -> DeskPost:
        return DeskPost(await self.listing(care, practitioner, now, header_key="desk_digest_header"))

    async def reminders(self, care: CareContext, practitioner: Practitioner, now: dt.datetime, reminded: set[int]) -> list[DeskPost]:
        pending = await self.store.pending_for_practitioner(practitioner.id)
        due = self.turnaround.reminders_due(now, pending, reminded)
        t = self.text(care, practitioner)
        lines = await self.lines(care, practitioner, due)
        return [DeskPost(t.reminder(ln, self.turnaround.reminder_business_days), request=ln.request, link=ln.link) for ln in lines]
