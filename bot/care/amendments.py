"""Messages that change after the fact: edits and redactions (bot/matrix/relations.py and the
runtime tell them apart). An edit never creates, changes or decides a request; a patient who
deletes the message of a pending request withdraws it."""

from __future__ import annotations

from bot.care import commands as cmd
from bot.care.renewals import Status, format_id
from bot.care.roster import Pair
from bot.care.service import CareContext, Reply, RequestStore


async def handle_edit(
    store: RequestStore, care: CareContext, pair: Pair, role: str, text: str, edited_event_id: str | None, room_id: str
) -> list[Reply]:
    """An edit never creates, changes or decides a request. An edited emergency phrase
    still gets the emergency numbers (safety first); whoever edits a command is told that
    edits are not read."""
    locale = care.locale_of(pair, pair.patient.matrix_id if role == "patient" else pair.practitioner.matrix_id)
    t = care.texts
    replies: list[Reply] = []
    if role == "patient" and care.lexicon.matches(text[: care.max_chars * 4]):
        doc_locale = care.locale_of(pair, pair.practitioner.matrix_id)
        replies.append(Reply(t.get("emergency_notice", locale), emergency=True,
                             for_practitioner=t.get("emergency_for_practitioner", doc_locale)))
        await store.audit(pair.patient.id, "emergency.notice", room_id)
    parsed = cmd.parse(text, max_length=care.max_chars)
    locale = getattr(parsed, "locale", None) or locale  # a command's answer: its word's language
    made = await store.request_by_event(edited_event_id) if edited_event_id else None
    if made is not None and made.room_id == room_id and made.status == Status.PENDING.value:
        replies.append(Reply(t.get("edit_not_read_pending", locale, id=format_id(made.id))))
    elif made is not None or parsed is not None:
        replies.append(Reply(t.get("edit_not_read", locale)))
    if replies:
        await store.audit(pair.patient.id if role == "patient" else pair.practitioner.id, "message.edit_ignored", room_id)
    return replies


async def withdraw(store: RequestStore, care: CareContext, pair: Pair, redacted_event_id: str, room_id: str) -> list[Reply]:
    """The patient deleted (redacted) the message that made a pending request: it is
    cancelled, and both are told."""
    req = await store.request_by_event(redacted_event_id)
    if req is None or req.room_id != room_id or req.status != Status.PENDING.value:
        return []
    if not await store.decide(req.id, Status.CANCELLED.value, None, pair.patient.id):
        return []
    rid = format_id(req.id)
    await store.audit(pair.patient.id, "renewal.cancelled", rid, {"by": "redaction"}, care.policy_hash)
    t = care.texts
    text = t.get("renewal_withdrawn", care.locale_of(pair, pair.patient.matrix_id), id=rid, medication=req.medication)
    to_doc = t.get("renewal_withdrawn_for_practitioner", care.locale_of(pair, pair.practitioner.matrix_id), id=rid)
    return [Reply(text, renewal=(rid, Status.CANCELLED.value, req.medication, ()), for_practitioner=to_doc)]
