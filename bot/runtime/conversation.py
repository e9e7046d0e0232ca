"""Messages of a pair room's patient or practitioner: handled by the care service in one
transaction that marks the event handled, records the request and queues the replies.

What the user typed is read by bot/matrix/relations.py (reply fallback stripped, edits and
threads told apart): an edit goes to `amendments.handle_edit`, which never changes a request;
an answer to a message in a thread goes to that thread. An emergency notice mentions the
practitioner at most once per room per 10 minutes (mentions.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

from nio import RoomMessageText

from bot.care import amendments
from bot.care.commands import Command, parse
from bot.care.roster import Pair
from bot.care.service import CareService, Reply
from bot.faults import crash_point
from bot.matrix.messages import notice, renewal_meta
from bot.matrix.relations import read_message
from bot.runtime.mentions import MentionThrottle
from bot.runtime.desk_room import DeskRelay, pair_content
from bot.runtime.shared import TO, LiveState, Wake, txn_for
from bot.runtime.trust_gate import TrustGate
from bot.store import RoomRecord, Store


def reply_content(reply: Reply, pair: Pair, reply_to: str | None, thread_root: str | None = None) -> dict[str, Any]:
    addressed = None
    if reply.for_practitioner is not None:
        addressed = (pair.practitioner.matrix_id, pair.practitioner.display_name, reply.for_practitioner)
    extra: dict[str, Any] = {}
    if reply.renewal is not None:
        extra.update(renewal_meta(*reply.renewal))
    if reply.emergency:
        extra["carebot.emergency"] = True
    if reply.disclaimer:
        extra["carebot.disclaimer"] = True
    content = notice(reply.text, reply_to=reply_to, thread_root=thread_root, addressed=addressed, extra=extra, notify=reply.notify)
    content[TO] = [pair.patient.matrix_id, pair.practitioner.matrix_id]
    return content


class Conversation:
    kinds = (RoomMessageText,)
    active_pairs_only = True

    def __init__(
        self, store: Store, service: CareService, state: LiveState, wake: Wake,
        mentions: MentionThrottle | None = None, gate: TrustGate | None = None, bridge: Any = None,
        relay: DeskRelay | None = None,
        on_command: Callable[[str], None] | None = None,
    ) -> None:
        self._gate = gate  # a state-changing command counts only from a trusted device
        self._relay = relay  # the practitioner's desk: their half of the answers goes there
        self._store = store
        self._service = service
        self._state = state
        self._wake = wake
        self._mentions = mentions or MentionThrottle()
        self._bridge = bridge  # the clinic bridge (bot/fhir/bridge.py), when fhir.url is set
        self._on_command = on_command  # counts commands by name (metrics)

    async def handle(self, record: RoomRecord, pair: Pair | None, event: RoomMessageText) -> None:
        assert pair is not None  # active_pairs_only
        if event.sender == pair.patient.matrix_id:
            role = "patient"
        elif event.sender == pair.practitioner.matrix_id:
            role = "practitioner"
        else:
            return
        room_id = record.room_id
        incoming = read_message(event.source.get("content", {}))
        care = self._state.care
        if not incoming.is_edit and self._gate is not None and await self._gate.refused(
            room_id, pair, role, event, incoming.text, incoming.thread_root
        ):
            return
        async with self._store.transaction():
            if not await self._store.claim_event(event.event_id, room_id):
                return  # handled before (a batch seen again after a restart)
            relay = self._relay
            if incoming.is_edit:
                replies = await amendments.handle_edit(self._store, care, pair, role, incoming.text, incoming.edit_of, room_id)
                answer_to = incoming.edit_of or event.event_id
            else:
                replies = await relay.before(pair, role, incoming.text, room_id) if relay else None
                if replies is None:
                    replies = await self._service.handle_message(care, pair, role, incoming.text, event.event_id, room_id)
                answer_to = event.event_id
            replies = [
                dataclasses.replace(r, for_practitioner=None)
                if r.emergency and r.for_practitioner is not None and not self._mentions.allow(room_id) else r
                for r in replies
            ]
            to_desk = False
            if relay is not None:  # the practitioner's halves to the desk, the patient's stay here
                replies, to_desk = await relay.after(pair, role, replies, event.event_id, room_id)
            make_content = pair_content if to_desk else reply_content
            for n, reply in enumerate(replies):
                content = make_content(reply, pair, answer_to, incoming.thread_root)
                await self._store.enqueue(txn_for(event.event_id, str(n)), room_id, content)
            if self._bridge is not None:  # the Task writes commit with the request or decision
                await self._bridge.queue(pair, replies)
        crash_point("after_commit")
        self._wake()  # the reply's room sender starts now (the outbox reads committed replies)...
        await asyncio.sleep(0)  # ...and is on the wire before the rest of the batch is handled
        if self._bridge is not None:
            self._bridge.wake()  # the FHIR write happens later, in the bridge's own task
        if self._on_command is not None:
            self._on_command(command_name(incoming.text))


def command_name(body: str) -> str:
    """The command's canonical name for the metrics ('message' when it is not one, 'invalid'
    for an unknown or malformed one) — never its arguments."""
    parsed = parse(body)
    if parsed is None:
        return "message"
    if isinstance(parsed, Command):
        return parsed.name
    return parsed.name or "invalid"
