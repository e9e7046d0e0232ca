"""What the bot does with one message in a pair room, as domain answers (no Matrix here).

`CareService.handle_message` is called inside the database transaction that also queues the
answers and marks the event handled, so a request is recorded exactly once with its replies.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
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
MAX_LISTED = 6  # treatments listed in a refusal or an "ambiguous" question


@dataclass(frozen=True)
class Reply:
    text: str
    renewal: tuple[str, str, str, tuple[str, ...]] | None = None  # id, status, medication, rules
    for_practitioner: str | None = None  # a line addressed to the practitioner, who is mentioned
    emergency: bool = False
    disclaimer: bool = False
    # The practitioner's decision: sent so the patient's client notifies her (m.text; Element
    # silences m.notice). Its first line, on a lock screen, names no medication (texts.py).
    notify: bool = False

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
    flood_per_minute: int  # a patient's counted commands per minute
    practitioner_per_minute: int = 60  # a practitioner's (pair rooms and desk together)

    @classmethod
    def load(cls, config: Any, roster: Roster | None = None) -> "CareContext":
        """Load roster (unless given: the FHIR bridge's), policies, texts and lexicon."""
        errors: list[ConfigError] = []
        loaded: dict[str, Any] = {} if roster is None else {"roster": roster}
        for name, loader, arg in (
            ("roster", (lambda _path: roster) if roster is not None else Roster.load, config.roster.path),
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
            practitioner_per_minute=config.limits.practitioner_commands_per_minute,
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
    async def request_by_event(self, event_id: str) -> Any: ...
    async def requests_in_room(self, room_id: str, status: str | None = None) -> list[Any]: ...
    async def open_requests(self, patient_id: str) -> list[Any]: ...
    async def decide(self, request_id: int, status: str, note: str | None, decided_by: str) -> bool: ...
    async def audit(self, actor: str, action: str, subject: str | None = None, details: dict[str, Any] | None = None, policy_hash: str | None = None) -> None: ...


def ineligible_id(event_id: str) -> str:
    """The `carebot.renewal.id` of a refused attempt: "X-" and 6 characters from its event id.

    A refused attempt is not a request: it takes no number from the R-sequence the practitioner
    sees (R1, R2, … stay consecutive) and cannot be cancelled or decided. The id is stable for
    an event (a redelivered event gets the same one) and names its line in `carebot audit`.
    """
    digest = hashlib.sha256(event_id.encode()).digest()
    return "X-" + base64.b32encode(digest).decode()[:6]


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

    def _flooding(self, care: CareContext, who: str, limit: int) -> tuple[bool, bool]:
        """(over the limit, first time told this minute) for one more counted command.

        Only commands that were handled count: a refused one is not recorded, so "send it
        again in a minute" is always true — within a minute the oldest counted ones expire.
        """
        now = self.clock()
        q = self._recent.setdefault(who, deque())
        while q and now - q[0] >= 60:
            q.popleft()
        if len(q) < limit:
            q.append(now)
            return False, False
        told = self._limited_notice.get(who)
        if told is not None and now - told < 60:
            return True, False
        self._limited_notice[who] = now
        return True, True

    @staticmethod
    def _counts(parsed: cmd.Command | cmd.CommandError) -> bool:
        """Help and unknown commands never count toward the flood limit."""
        return parsed.name not in (None, "help")

    async def handle_message(
        self,
        care: CareContext,
        pair: Pair,
        role: str,
        body: str,
        event_id: str,
        room_id: str,
        today: dt.date | None = None,
        *,
        flood_checked: bool = False,
    ) -> list[Reply]:
        # `flood_checked`: the caller (the desk) already counted this command toward the limit.
        # Free text and notices: the roster locale. A command's answer: the command word's language.
        roster_locale = care.locale_of(pair, pair.patient.matrix_id if role == "patient" else pair.practitioner.matrix_id)
        locale = roster_locale
        t = care.texts
        replies: list[Reply] = []
        if role == "patient" and care.lexicon.matches(body[: care.max_chars * 4]):
            doc_locale = care.locale_of(pair, pair.practitioner.matrix_id)
            # Written in another language than the roster's (its own emergency words): the
            # numbers in that language too, after the roster's — nobody must have to guess.
            notice_text = "\n\n".join(
                t.get("emergency_notice", lang) for lang in [locale, *sorted(care.lexicon.languages(body[: care.max_chars * 4]) - {locale})]
            )
            replies.append(
                Reply(
                    notice_text,
                    emergency=True,
                    for_practitioner=t.get("emergency_for_practitioner", doc_locale),
                )
            )
            await self.store.audit(pair.patient.id, "emergency.notice", room_id)
        parsed = cmd.parse(body, max_length=care.max_chars)
        if parsed is None:
            return replies  # a message for the practitioner: nothing to add
        locale = parsed.locale or roster_locale
        who, limit = (pair.patient.id, care.flood_per_minute) if role == "patient" else (pair.practitioner.id, care.practitioner_per_minute)
        over, tell = self._flooding(care, who, limit) if self._counts(parsed) and not flood_checked else (False, False)
        if over:
            # A renewal request is never dropped in silence: each one is told to come again.
            if parsed.name == "renew":
                replies.append(Reply(t.get("flood_renewal", roster_locale)))
            elif tell:
                replies.append(Reply(t.get("flood_limited", roster_locale)))
            return replies
        if isinstance(parsed, cmd.CommandError):
            replies.append(Reply(self._error_text(care, parsed, locale)))
            return replies
        if parsed.role not in ("anyone", role):
            replies.append(Reply(t.get("not_allowed_for_role", locale, command="!" + cmd.spec(parsed.name).display_name(locale))))
            return replies
        if parsed.name == "help":
            replies.append(Reply(cmd.help_text(locale, texts=t, role=role)))  # type: ignore[arg-type]
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
            if err.suggestions:
                # The suggestion in the roster language when both languages fit ("!statu").
                name, lang = next((s for s in err.suggestions if s[1] == locale), err.suggestions[0])
                return t.get("did_you_mean", lang, command="!" + cmd.spec(name).display_name(lang))
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
        key = normalize_medication(decision.medication)
        t = care.texts
        ids = {"patient": pair.patient.id, "practitioner": pair.practitioner.id}
        duplicate = next((r for r in open_reqs if normalize_medication(r.medication_key) == key), None)
        if duplicate is not None and "no_duplicate_open" in decision.failed_rule_types:
            # The same treatment is already waiting: point to that request, make no other.
            rid = format_id(duplicate.id)
            await self.store.audit(pair.patient.id, "renewal.duplicate", rid, {"request": rid, **ids, "status": duplicate.status}, care.policy_hash)
            text = t.get("renewal_already_pending", locale, id=rid, medication=duplicate.medication)
            return [Reply(text, renewal=(rid, duplicate.status, duplicate.medication, ()))]
        rules = tuple(decision.failed_rule_ids)
        if not decision.eligible:
            # Refused: nothing stored, no R-number used (see ineligible_id).
            rid = ineligible_id(event_id)
            status = Status.INELIGIBLE.value
            await self.store.audit(pair.patient.id, "renewal.requested", rid, {"request": rid, **ids, "status": status, "rules": list(rules)}, care.policy_hash)
            return [Reply(self._refusal_text(care, decision, medication, locale), renewal=(rid, status, medication, rules))]
        req = await self.store.add_request(
            event_id=event_id,
            room_id=room_id,
            patient_id=pair.patient.id,
            practitioner_id=pair.practitioner.id,
            medication=medication,
            medication_key=key,
            status=Status.PENDING.value,
            rules=(),
        )
        rid = format_id(req.id)
        await self.store.audit(pair.patient.id, "renewal.requested", rid, {"request": rid, **ids, "status": req.status, "rules": []}, care.policy_hash)
        text = t.get("renewal_pending", locale, id=rid, medication=medication)
        doc_locale = care.locale_of(pair, pair.practitioner.matrix_id)
        to_doc = t.get("renewal_new_for_practitioner", doc_locale, id=rid, medication=medication)
        return [Reply(text, renewal=(rid, req.status, medication, ()), for_practitioner=to_doc)]

    @staticmethod
    def _refusal_text(care: CareContext, decision: Any, medication: str, locale: str) -> str:
        """Why a request cannot be sent; which treatments can be, when it matched none (or several)."""
        t = care.texts
        listed = decision.renewable[:MAX_LISTED]
        if decision.candidates and decision.failed_rule_types == ("long_term_treatment",):
            items = "\n".join("• " + name for name in decision.candidates[:MAX_LISTED])
            return t.get("renewal_ambiguous", locale, medication=medication, treatments=items, example=decision.candidates[0])
        reasons = "\n".join("- " + r for r in decision.reasons(locale))
        text = t.get("renewal_ineligible", locale, medication=medication, reasons=reasons)
        if decision.unmatched:
            if listed:
                text += "\n" + t.get("renewal_renewable", locale, treatments=", ".join(listed), example=listed[0])
            else:
                text += "\n" + t.get("renewal_none_renewable", locale)
        return text

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
        details = {"request": rid, "patient": req.patient_id, "practitioner": req.practitioner_id, "status": status.value}
        await self.store.audit(actor, "renewal." + status.value, rid, details, care.policy_hash)
        # The patient reads it: in their language, or the one of their own "!cancel".
        patient_locale = locale if status is Status.CANCELLED else care.locale_of(pair, pair.patient.matrix_id)
        t = care.texts
        if status is Status.APPROVED:
            key = "renewal_approved_note" if note else "renewal_approved"
            text = t.get(key, patient_locale, id=rid, medication=req.medication, **({"note": shown(note)} if note else {}))
        elif status is Status.DENIED:
            text = t.get("renewal_denied", patient_locale, id=rid, medication=req.medication, reason=shown(note or ""))
        else:
            text = t.get("renewal_cancelled", patient_locale, id=rid, medication=req.medication)
        notify = status is not Status.CANCELLED  # the answer she waits for; her own !cancel stays quiet
        return [Reply(text, renewal=(rid, status.value, req.medication, ()), notify=notify)]

    async def decide_from_clinic(self, care: CareContext, pair: Pair, request_id: int, status: Status, note: str | None, room_id: str) -> list[Reply]:
        """A decision made in the clinic's software (the FHIR bridge): the same path as
        `!accepter` / `!refuser` typed by the practitioner, and the practitioner is told where
        it came from. A request that is no longer pending gets the usual 'already decided'."""
        c = cmd.Command("approve" if status is Status.APPROVED else "deny", request_id=request_id, note=note, reason=note)
        replies = await self._decide(care, pair, c, care.locale_of(pair, pair.practitioner.matrix_id), room_id, status, note, pair.practitioner.id)
        if replies and replies[0].renewal is not None and replies[0].renewal[1] == status.value:
            doc_locale = care.locale_of(pair, pair.practitioner.matrix_id)
            told = care.texts.get("clinic_decision_for_practitioner", doc_locale, id=format_id(request_id), state=care.texts.get("state_" + status.value, doc_locale))
            replies[0] = dataclasses.replace(replies[0], for_practitioner=told)
        return replies

    async def _cancel(self, care: CareContext, pair: Pair, c: cmd.Command, locale: str, event_id: str, room_id: str, today: dt.date) -> list[Reply]:
        return await self._decide(care, pair, c, locale, room_id, Status.CANCELLED, None, pair.patient.id)

    async def _approve(self, care: CareContext, pair: Pair, c: cmd.Command, locale: str, event_id: str, room_id: str, today: dt.date) -> list[Reply]:
        return await self._decide(care, pair, c, locale, room_id, Status.APPROVED, c.note, pair.practitioner.id)

    async def _deny(self, care: CareContext, pair: Pair, c: cmd.Command, locale: str, event_id: str, room_id: str, today: dt.date) -> list[Reply]:
        return await self._decide(care, pair, c, locale, room_id, Status.DENIED, c.reason, pair.practitioner.id)
