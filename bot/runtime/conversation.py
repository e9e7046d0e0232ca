"""Messages of a pair room's patient or practitioner: handled by the care service in one
transaction that records the request, queues the replies and marks the event handled."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nio import RoomMessageText

from bot.care.commands import Command, parse
from bot.care.roster import Pair
from bot.care.service import CareService, Reply
from bot.faults import crash_point
from bot.matrix.messages import notice, renewal_meta
from bot.runtime.shared import TO, LiveState, Wake, txn_for
from bot.store import RoomRecord, Store


def reply_content(reply: Reply, pair: Pair, reply_to: str | None) -> dict[str, Any]:
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
    content = notice(reply.text, reply_to=reply_to, addressed=addressed, extra=extra)
    content[TO] = [pair.patient.matrix_id, pair.practitioner.matrix_id]
    return content


class Conversation:
    kinds = (RoomMessageText,)
    active_pairs_only = True

    def __init__(
        self, store: Store, service: CareService, state: LiveState, wake: Wake,
        on_command: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._service = service
        self._state = state
        self._wake = wake
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
        async with self._store.transaction():
            if await self._store.is_processed(event.event_id):
                return
            replies = await self._service.handle_message(
                self._state.care, pair, role, event.body, event.event_id, room_id
            )
            for n, reply in enumerate(replies):
                await self._store.enqueue(
                    txn_for(event.event_id, str(n)), room_id, reply_content(reply, pair, event.event_id)
                )
            await self._store.mark_processed(event.event_id, room_id)
        crash_point("after_commit")
        self._wake()  # start sending while the rest of the batch is handled
        if self._on_command is not None:
            self._on_command(command_name(event.body))


def command_name(body: str) -> str:
    """The command's canonical name for the metrics ('message' when it is not one, 'invalid'
    for an unknown or malformed one) — never its arguments."""
    parsed = parse(body)
    if parsed is None:
        return "message"
    if isinstance(parsed, Command):
        return parsed.name
    return parsed.name or "invalid"
