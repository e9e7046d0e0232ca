"""What the bot does with one message in a pair room, as domain answers (no Matrix here).

`CareService.handle_message` is called inside the database transaction that also queues the
answers and marks the event handled, so a request is recorded exactly once with its replies.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bot.care import commands as cmd
from bot.care.emergency import Lexicon
from bot.care.policy import EligibilityContext, Policies, normalize_medication
from bot.care.renewals import Status, format_id
from bot.care.roster import Pair, Roster
from bot.care.texts import Texts
from bot.yamlutil import ConfigError, ConfigErrors

MAX_SHOWN_CHARS = 200


@dataclass(frozen=True)
class Reply:
    text: str
    renewal: tuple[str, str, str, tuple[str, ...]] | None = None  # id, status, medication, rules
    for_practitioner: str | None = None  # a line addressed to the practitioner, who is mentioned
    emergency: bool = False
    disclaimer: bool = False

    @property
    def mention_practitioner(self) -> bool:
        return self.for_practitioner is not None


@dataclass(frozen=True)
class CareContext:
    """Roster, policies, texts and lexicon in force, loaded together and replaced together."""

    roster: Roster
    policies: Policies
    texts: Texts
    lexicon: Lexicon
    default_locale: str
    policy_hash: str
    max_chars: int
    flood_per_minute: int

    @classmethod
    def load(cls, config: Any) -> "CareContext":
        errors: list[ConfigError] = []
        loaded: dict[str, Any] = {}
        for name, loader, arg in (
            ("roster", Roster.load, config.roster.path),
            ("policies", Policies.load, config.policies.path),
            ("texts", Texts.load, config.policies.path),
            ("lexicon", Lexicon.load, config.policies.path),
        ):
            try:
                loaded[name] = loader(arg)
            except ConfigErrors as e:
                errors.extend(e.errors)
        if errors:
            raise ConfigErrors(errors)
        # Several bots on one PostgreSQL: this one serves only its practitioners' pairs.
        served = getattr(getattr(config, "bot", None), "practitioners", None)
        return cls(
            roster=loaded["roster"].restricted_to(served),
            policies=loaded["policies"],
            texts=loaded["texts"],
            lexicon=loaded["lexicon"],
            default_locale=config.locale,
            policy_hash=loaded["policies"].policy_hash(),
            max_chars=config.limits.max_message_chars,
            flood_per_minute=config.limits.flood_messages_per_minute,
        )

    @staticmethod
    def stamp(config: Any) -> tuple[float, ...]:
        """Modification times of the roster and policy files, to notice edits."""
        files = [Path(config.roster.path)] + sorted(Path(config.policies.path).glob("*.yaml"))
        out: list[float] = []
        for f in files:
            try:
                out.append(f.stat().st_mtime_ns)
            except OSError:
                out.append(-1)
        return tuple(out)

    def locale_for_mxid(self, mxid: str) -> str:
        person = self.roster.patient_by_mxid(mxid) or self.roster.practitioner_by_mxid(mxid)
        return getattr(person, "locale", None) or self.default_locale

    def locale_of(self, pair: Pair, mxid: str) -> str:
        if mxid == pair.practitioner.matrix_id:
            return getattr(pair.practitioner, "locale", None) or self.default_locale
        return getattr(pair.patient, "locale", None) or self.default_locale


class RequestStore(Protocol):
    async def add_request(self, **kw: Any) -> Any: ...
    async def request(self, request_id: int) -> Any: ...
    async def requests_in_room(self, room_id: str, status: str | None = None) -> list[Any]: ...
    async def open_requests(self, patient_id: str) -> list[Any]: ...
    async def decide(self, request_id: int, status: str, note: str | None, decided_by: str) -> bool: ...
    async def audit(self, actor: str, action: str, subject: str | None = None, details: dict[str, Any] | None = None, policy_hash: str | None = None) -> None: ...


def shown(text: str) -> str:
    """User text as echoed back: one line, at most MAX_SHOWN_CHARS characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_SHOWN_CHARS else flat[: MAX_SHOWN_CHARS - 1] + "…"


@dataclass
class CareService:
    store: RequestStore
    clock: Any = time.monotonic
    _recent: dict[str, deque[float]] = field(default_factory=dict)
    _limited_notice: dict[str, float] = field(default_factory=dict)

    def _flooding(self, care: CareContext, who: str) -> tuple[bool, bool]:
        """(over the limit, first time told this minute)."""
        now = self.clock()
        q = self._recent.setdefault(who, deque())
        while q and now - q[0] > 60:
            q.popleft()
        q.append(now)
        if len(q) <= care.flood_per_minute:
            return False, False
        told = self._limited_notice.get(who)
        if told is not None and now - told < 60:
            return True, False
        self._limited_notice[who] = now
        return True, True

    async def handle_message(
        self,
        care: CareContext,
        pair: Pair,
        role: str,
        body: str,
        event_id: str,
        room_id: str,
        today: dt.date | None = None,
    ) -> list[Reply]:
        locale = care.locale_of(pair, pair.patient.matrix_id if role == "patient" else pair.practitioner.matrix_id)
        t = care.texts
        replies: list[Reply] = []
        if role == "patient" and care.lexicon.matches(body[: care.max_chars * 4]):
            doc_locale = care.locale_of(pair, pair.practitioner.matrix_id)
            replies.append(
                Reply(
                    t.get("emergency_notice", locale),
                    emergency=True,
                    for_practitioner=t.get("emergency_for_practitioner", doc_locale),
                )
            )
            await self.store.audit(pair.patient.id, "emergency.notice", room_id)
        parsed = cmd.parse(body, max_length=care.max_chars)
        if parsed is None:
            return replies  # a message for the practitioner: nothing to add
        who = pair.patient.id if role == "patient" else pair.practitioner.id
        over, tell = self._flooding(care, who)
        if over:
            if tell:
                replies.append(Reply(t.get("flood_limited", locale)))
            return replies
        if isinstance(parsed, cmd.CommandError):
            replies.append(Reply(self._error_text(care, parsed, locale)))
            return replies
        if parsed.role not in ("anyone", role):
            replies.append(Reply(t.get("not_allowed_for_role", locale, command="!" + cmd.spec(parsed.name).display_name(locale))))
            return replies
        if parsed.name == "help":
            help_text = cmd.help_text(locale, texts=t, role=role)  # type: ignore[arg-type]
            replies.append(Reply(help_text + "\n\n" + t.get("disclaimer", locale)))
            return replies
        handler = getattr(self, "_" + parsed.name)
        replies.extend(await handler(care, pair, parsed, locale, event_id, room_id, today or dt.date.today()))
        return replies

    def _error_text(self, care: CareContext, err: cmd.CommandError, locale: str) -> str:
        t = care.texts
        if err.reason == "too_long":
            return t.get("too_long", locale, max=care.max_chars)
        if err.reason == "control_characters":
            return t.get("invalid_characters", locale)
        if err.name is None:
            return t.get("unknown_command", locale)
        return t.get("usage", locale, usage=cmd.usage(err.name, locale))

    # -- commands ------------------------------------------------------------------------
    async def _renew(self, care: CareContext, pair: Pair, c: cmd.Command, locale: str, event_id: str, room_id: str, today: dt.date) -> list[Reply]:
        assert c.medication is not None
        # Pending requests of this patient with THIS practitioner (the rules count per pair).
        open_reqs = [r for r in await self.store.open_requests(pair.patient.id) if r.practitioner_id == pair.practitioner.id]
        decision = care.policies.evaluate(
            EligibilityContext(
                pair=pair,
                medication=c.medication,
                today=today,
                open_medications=tuple(r.medication_key for r in open_reqs),
                open_count=len(open_reqs),
            )
        )
        medication = shown(decision.medication)
        status = Status.PENDING if decision.eligible else Status.INELIGIBLE
        rules = tuple(decision.failed_rule_ids)
        req = await self.store.add_request(
            event_id=event_id,
            room_id=room_id,
            patient_id=pair.patient.id,
            practitioner_id=pair.practitioner.id,
            medication=medication,
            medication_key=normalize_medication(decision.medication),
            status=status.value,
            rules=rules,
        )
        rid = format_id(req.id)
        await self.store.audit(pair.patient.id, "renewal.requested", rid, {"status": status.value, "rules": list(rules)}, care.policy_hash)
        t = care.texts
        if decision.eligible:
            text = t.get("renewal_pending", locale, id=rid, medication=medication)
            doc_locale = care.locale_of(pair, pair.practitioner.matrix_id)
            to_doc = t.get("renewal_new_for_practitioner", doc_locale, id=rid, medication=medication)
            return [Reply(text, renewal=(rid, status.value, medication, ()), for_practitioner=to_doc)]
        reasons = "\n".join("- " + r for r in decision.reasons(locale))
        text = t.get("renewal_ineligible", locale, id=rid, medication=medication, reasons=reasons)
        return [Reply(text, renewal=(rid, status.value, medication, rules))]

    async def _status(self, care: CareContext, pair: Pair, c: cmd.Command, locale: str, event_id: str, room_id: str, today: dt.date) -> list[Reply]:
        t = care.texts
        reqs = await self.store.requests_in_room(room_id)
        if not reqs:
            return [Reply(t.get("status_empty", locale))]
        lines = [t.get("status_header", locale)]
        for r in reqs:
            lines.append(t.get("status_item", locale, id=format_id(r.id), medication=r.medication, state=t.get("state_" + r.status, locale)))
        return [Reply("\n".join(lines))]

    async def _pending(self, care: CareContext, pair: Pair, c: cmd.Command, locale: str, event_id: str, room_id: str, today: dt.date) -> list[Reply]:
        t = care.texts
        reqs = await self.store.requests_in_room(room_id, Status.PENDING.value)
        if not reqs:
            return [Reply(t.get("pending_empty", locale))]
        lines = [t.get("pending_header", locale)]
        lines += [t.get("pending_item", locale, id=format_id(r.id), medication=r.medication) for r in reqs]
        return [Reply("\n".join(lines))]

    async def _find(self, care: CareContext, c: cmd.Command, locale: str, room_id: str) -> tuple[Any, Reply | None]:
        t = care.texts
        rid = format_id(c.request_id) if c.request_id else "?"
        req = await self.store.request(c.request_id) if c.request_id else None
        # Another room's request is treated as unknown: it reveals nothing about other pairs.
        if req is None or req.room_id != room_id:
            return None, Reply(t.get("unknown_request", locale, id=rid))
        if req.status != Status.PENDING.value:
            return None, self._already_decided(care, req, locale)
        return req, None

    @staticmethod
    def _already_decided(care: CareContext, req: Any, locale: str) -> Reply:
        """A decided request stays as it is; the answer says so and carries its state."""
        rid = format_id(req.id)
        text = care.texts.get("already_decided", locale, id=rid, state=care.texts.get("state_" + req.status, locale))
        return Reply(text, renewal=(rid, req.status, req.medication, tuple(req.rules)))

    async def _decide(self, care: CareContext, pair: Pair, c: cmd.Command, locale: str, room_id: str, status: Status, note: str | None, actor: str) -> list[Reply]:
        req, problem = await self._find(care, c, locale, room_id)
        if problem is not None:
            return [problem]
        if not await self.store.decide(req.id, status.value, note, actor):
            return [self._already_decided(care, await self.store.request(req.id), locale)]
        rid = format_id(req.id)
        await self.store.audit(actor, "renewal." + status.value, rid, {}, care.policy_hash)
        patient_locale = care.locale_of(pair, pair.patient.matrix_id)
        t = care.texts
        if status is Status.APPROVED:
            key = "renewal_approved_note" if note else "renewal_approved"
            text = t.get(key, patient_locale, id=rid, medication=req.medication, **({"note": shown(note)} if note else {}))
        elif status is Status.DENIED:
            text = t.get("renewal_denied", patient_locale, id=rid, medication=req.medication, reason=shown(note or ""))
        else:
            text = t.get("renewal_cancelled", patient_locale, id=rid, medication=req.medication)
        return [Reply(text, renewal=(rid, status.value, req.medication, ()))]

    async def _cancel(self, care: CareContext, pair: Pair, c: cmd.Command, locale: str, event_id: str, room_id: str, today: dt.date) -> list[Reply]:
        return await self._decide(care, pair, c, locale, room_id, Status.CANCELLED, None, pair.patient.id)

    async def _approve(self, care: CareContext, pair: Pair, c: cmd.Command, locale: str, event_id: str, room_id: str, today: dt.date) -> list[Reply]:
        return await self._decide(care, pair, c, locale, room_id, Status.APPROVED, c.note, pair.practitioner.id)

    async def _deny(self, care: CareContext, pair: Pair, c: cmd.Command, locale: str, event_id: str, room_id: str, today: dt.date) -> list[Reply]:
        return await self._decide(care, pair, c, locale, room_id, Status.DENIED, c.reason, pair.practitioner.id)
