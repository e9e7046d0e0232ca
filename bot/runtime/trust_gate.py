"""The trust gate: a command that changes state (`!renouveler`, `!annuler`, `!accepter`,
`!refuser`, and the practitioner's `!absent` / `!retour`, which change what patients are told)
counts only if the device that encrypted it is trusted (bot/matrix/sender_trust.py).

Otherwise it changes nothing: the sender gets a short answer naming the device and what to do
(the practitioner through `PractitionerNotices`), the refusal is audited, and the event is
marked handled. Read-only commands (`!aide`, `!statut`, `!attente`) and ordinary messages pass:
they change nothing, and in `cross-signed` mode an untrusted device cannot read the answer
anyway (its room keys are withheld). An emergency phrase in a refused command still gets the
emergency numbers; the practitioner is mentioned at most once per room per 10 minutes, with the
same throttle as the conversation's (mentions.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from bot.care import commands as cmd
from bot.care.roster import Pair, Practitioner
from bot.matrix.messages import notice
from bot.matrix.sender_trust import IDENTITY_CHANGED, NO_SESSION, NOT_ENCRYPTED, SenderTrust, SenderTrustCheck
from bot.runtime.mentions import MentionThrottle
from bot.runtime.practitioner_notice import PractitionerNotices
from bot.runtime.shared import TO, LiveState, Wake, txn_for
from bot.store import Store

log = structlog.get_logger("carebot")

STATE_CHANGING = frozenset({"renew", "cancel", "approve", "deny", "away", "back"})
CHECK_FAILED = "check_failed"  # the device could not be checked now (homeserver unreachable)


def command_in(body: str, max_length: int) -> cmd.Command | None:
    """The command a message carries, looked for with and without a reply fallback (the
    leading "> " lines a reply quotes): a quote must not hide a command from the gate."""
    lines = body.splitlines()
    while lines and (lines[0].startswith(">") or not lines[0].strip()):
        lines.pop(0)
    for text in (body, "\n".join(lines)):
        parsed = cmd.parse(text, max_length=max_length)
        if isinstance(parsed, cmd.Command):
            return parsed
    return None


class TrustGate:
    def __init__(
        self, store: Store, state: LiveState, check: SenderTrustCheck, wake: Wake,
        notices: PractitionerNotices | None = None, mentions: MentionThrottle | None = None,
    ) -> None:
        self._notices = notices or PractitionerNotices(store)
        self._mentions = mentions or MentionThrottle()  # pass the conversation's: one budget per room
        self._store = store
        self._state = state
        self._check = check
        self._wake = wake

    async def refused(
        self, room_id: str, pair: Pair, role: str, event: Any, text: str | None = None, thread_root: str | None = None
    ) -> bool:
        """True if the event was a state-changing command from an untrusted device, now
        answered, audited and marked handled; False to let it through. `text` is what the user
        typed (bot/matrix/relations.py), the event's body by default."""
        care = self._state.care
        typed = event.body if text is None else text
        refusal = await self._untrusted(room_id, event, typed)
        if refusal is None:
            return False
        command, verdict = refusal
        actor = pair.patient.id if role == "patient" else pair.practitioner.id
        locale = care.locale_of(pair, event.sender)
        answer = self._text(verdict, role, command, locale)

        async def tell() -> None:
            if role == "patient" and care.lexicon.matches(typed[: care.max_chars * 4]):
                await self._emergency(room_id, pair, event.event_id, locale, thread_root)
            if role == "practitioner":  # what concerns their devices is for them only
                await self._notices.notify(pair, room_id, answer, "untrusted", event.event_id)
            else:
                content = notice(answer, reply_to=event.event_id, thread_root=thread_root)
                content[TO] = [pair.patient.matrix_id, pair.practitioner.matrix_id]
                await self._store.enqueue(txn_for(event.event_id, "untrusted"), room_id, content)

        await self._refuse(room_id, actor, role, command, verdict, event.event_id, tell)
        return True

    async def refused_in_desk(self, room_id: str, practitioner: Practitioner, event: Any, text: str) -> bool:
        """The same gate for a command typed in the practitioner's desk that concerns no one
        pair (`!absent`, `!retour`): the refusal is told in that desk."""
        refusal = await self._untrusted(room_id, event, text)
        if refusal is None:
            return False
        command, verdict = refusal
        care = self._state.care
        answer = self._text(verdict, "practitioner", command, getattr(practitioner, "locale", None) or care.default_locale)

        async def tell() -> None:
            await self._notices.to_desk(practitioner, room_id, answer, "untrusted", event.event_id)

        await self._refuse(room_id, practitioner.id, "practitioner", command, verdict, event.event_id, tell)
        return True

    async def _untrusted(self, room_id: str, event: Any, typed: str) -> tuple[cmd.Command, SenderTrust] | None:
        """(the command, the verdict) when `typed` is a state-changing command from a device
        the gate does not trust; None to let it through."""
        command = command_in(typed, self._state.care.max_chars)
        if command is None or command.name not in STATE_CHANGING:
            return None
        try:
            verdict = await self._check.of(event, room_id)
        except Exception as e:  # noqa: BLE001 - the homeserver is away: fail closed, say so
            log.warning("trust.check_failed", room_id=room_id, error=type(e).__name__)
            verdict = SenderTrust(False, CHECK_FAILED)
        return None if verdict.trusted else (command, verdict)

    async def _refuse(
        self, room_id: str, actor: str, role: str, command: cmd.Command, verdict: SenderTrust, event_id: str,
        tell: Callable[[], Awaitable[None]],
    ) -> None:
        """Audit the refusal, queue what `tell` says and mark the event handled, in one
        transaction (once per event); then wake the outbox."""
        async with self._store.transaction():
            if await self._store.is_processed(event_id):
                return
            await self._store.audit(
                actor, "trust.command_refused", room_id,
                {"command": command.name, "device_id": verdict.device_id, "reason": verdict.reason},
            )
            await tell()
            await self._store.mark_processed(event_id, room_id)
        log.warning(
            "trust.command_refused", room_id=room_id, role=role, reason=verdict.reason, device_id=verdict.device_id
        )
        self._wake()

    def _text(self, verdict: SenderTrust, role: str, command: cmd.Command, locale: str) -> str:
        """What the sender is told: what went wrong with which device, and what to do."""
        t = self._state.care.texts
        device = verdict.device_label()
        if verdict.reason == CHECK_FAILED:
            return t.get("untrusted_command_retry", locale)
        if verdict.reason in (NOT_ENCRYPTED, NO_SESSION):
            return t.get("untrusted_command_unencrypted", locale)
        if role == "practitioner":
            name = "!" + cmd.spec(command.name).display_name(locale)
            return t.get("untrusted_command_for_practitioner", locale, command=name, device=device)
        if verdict.reason == IDENTITY_CHANGED:
            return t.get("untrusted_command_identity", locale, device=device)
        return t.get("untrusted_command", locale, device=device)

    async def _emergency(self, room_id: str, pair: Pair, event_id: str, locale: str, thread_root: str | None) -> None:
        care = self._state.care
        t = care.texts
        doc = pair.practitioner
        addressed = None  # the patient always gets the numbers; the practitioner's mention is throttled
        if self._mentions.allow(room_id):
            addressed = (doc.matrix_id, doc.display_name, t.get("emergency_for_practitioner", care.locale_of(pair, doc.matrix_id)))
        content = notice(
            t.get("emergency_notice", locale), reply_to=event_id, thread_root=thread_root,
            addressed=addressed, extra={"carebot.emergency": True},
        )
        content[TO] = [pair.patient.matrix_id, doc.matrix_id]
        await self._store.enqueue(txn_for(event_id, "0"), room_id, content)
        await self._store.audit(pair.patient.id, "emergency.notice", room_id)
