"""Redactions in pair rooms.

- The patient deletes the message that made a pending request: the request is cancelled and
  both are told (a request nobody can see any more must not stay approvable).
- Someone (the practitioner may redact) deletes the pinned emergency banner: the bot posts it
  again and pins the new copy, so the banner is always there. Nobody but the bot can change
  `m.room.pinned_events` (power level 100), so it cannot be unpinned.
"""

from __future__ import annotations

from typing import Any

import structlog
from nio import AsyncClient, BadEvent, RedactionEvent, RoomGetStateEventResponse

from bot.care import amendments
from bot.care.roster import Pair
from bot.matrix.messages import notice
from bot.runtime.conversation import reply_content
from bot.runtime.shared import PIN, TO, LiveState, Wake, txn_for
from bot.store import RoomRecord, Store

log = structlog.get_logger("carebot")

PINNED = "m.room.pinned_events"


def redacted_id(event: Any) -> str | None:
    """The redacted event of an `m.room.redaction`: top-level `redacts` before room version 11,
    in the content from then on (nio 0.26 only knows the old form and hands the new one over
    as a BadEvent)."""
    source = getattr(event, "source", None) or {}
    if source.get("type") != "m.room.redaction":
        return None
    redacts = source.get("redacts") or (source.get("content") or {}).get("redacts")
    return redacts if isinstance(redacts, str) and redacts else None


class Redactions:
    kinds = (RedactionEvent, BadEvent)
    active_pairs_only = False  # the banner is restored in every pair room

    def __init__(self, client: AsyncClient, store: Store, state: LiveState, wake: Wake, bridge: Any = None) -> None:
        self._client = client
        self._store = store
        self._state = state
        self._wake = wake
        self._bridge = bridge  # the clinic bridge: a withdrawn request's Task is cancelled too

    async def handle(self, record: RoomRecord, pair: Pair | None, event: RedactionEvent | BadEvent) -> None:
        redacted = redacted_id(event)
        if redacted is None or not event.event_id or await self._store.is_processed(event.event_id):
            return
        banner = await self._pinned_banner(record.room_id, redacted)
        care = self._state.care
        active = pair is not None and pair.verified and record.state == "active"
        async with self._store.transaction():
            if await self._store.is_processed(event.event_id):
                return
            if banner:
                locale = care.locale_of(pair, pair.patient.matrix_id) if pair else care.default_locale
                content = notice(care.texts.get("disclaimer", locale), extra={"carebot.disclaimer": True})
                content[TO] = [pair.patient.matrix_id, pair.practitioner.matrix_id] if pair else None
                content[PIN] = True
                await self._store.enqueue(txn_for(event.event_id, "banner"), record.room_id, content)
                await self._store.audit("bot", "room.banner_restored", record.room_id)
            elif active and pair is not None and event.sender == pair.patient.matrix_id:
                replies = await amendments.withdraw(self._store, care, pair, redacted, record.room_id)
                for n, reply in enumerate(replies):
                    await self._store.enqueue(txn_for(event.event_id, str(n)), record.room_id, reply_content(reply, pair, None))
                if self._bridge is not None:
                    await self._bridge.queue(pair, replies)
            await self._store.mark_processed(event.event_id, record.room_id)
        if banner:
            log.info("room.banner_restored", room_id=record.room_id, event_id=event.event_id)
        self._wake()
        if self._bridge is not None:
            self._bridge.wake()

    async def _pinned_banner(self, room_id: str, redacted: str) -> bool:
        """Whether the redacted event is pinned (the banner: only the bot pins)."""
        resp: Any = await self._client.room_get_state_event(room_id, PINNED)
        if not isinstance(resp, RoomGetStateEventResponse):
            return False
        pinned = resp.content.get("pinned") or []
        return redacted in pinned
