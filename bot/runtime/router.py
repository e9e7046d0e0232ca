"""Route one sync batch: device-list changes, invites, `carebot.pair` state, then each room event
to the first handler that takes it.

A handler is any object with `kinds` (the nio event classes it takes), `active_pairs_only`
(False: also in closed rooms and rooms of pairs no longer verified) and
`async handle(record, pair, event)`. New behaviour plugs in by adding a handler to the list
given to the router; the router itself does not change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import structlog
from nio import AsyncClient, RoomCreateEvent, SyncResponse, UnknownEvent

from bot.care.roster import Pair
from bot.matrix.sync import missed_events
from bot.matrix.rooms import PAIR_STATE
from bot.runtime.shared import LiveState, Wake
from bot.store import RoomRecord, Store

log = structlog.get_logger("carebot")


class RoomEventHandler(Protocol):
    kinds: tuple[type, ...]
    active_pairs_only: bool

    async def handle(self, record: RoomRecord, pair: Pair | None, event: Any) -> None: ...


InviteHandler = Callable[[str, list[Any]], Awaitable[None]]  # (room id, invite state)
StateNoter = Callable[[str, list[Any]], None]  # (room id, state and timeline events)
OtherRoomHandler = Callable[[str, Any], Awaitable[bool]]  # (room id, event) -> taken
GapHandler = Callable[[str], Awaitable[bool]]  # (room id) -> the gap is dealt with: do not page back
DeviceChanges = Callable[[list[str]], None]  # user ids whose device lists changed


class Router:
    def __init__(
        self,
        client: AsyncClient,
        store: Store,
        state: LiveState,
        *,
        on_invite: InviteHandler,
        on_device_changes: DeviceChanges,
        handlers: Sequence[RoomEventHandler],
        wake: Wake,
        note_state: StateNoter | None = None,
        other_rooms: OtherRoomHandler | None = None,
        gap_without_paging: GapHandler | None = None,
    ) -> None:
        self._client = client
        self._store = store
        self._state = state
        self._on_invite = on_invite
        self._on_device_changes = on_device_changes
        self._handlers = tuple(handlers)
        self._wake = wake
        self._note_state = note_state  # e.g. the desk's own state, to find desks again
        self._other_rooms = other_rooms  # rooms that are not pair rooms (the desks)
        self._gap_without_paging = gap_without_paging  # e.g. Spaces: nothing in them is for the bot

    async def on_sync(self, resp: SyncResponse, initial: bool, since: str | None) -> None:
        self._on_device_changes(resp.device_list.changed)
        for room_id, info in resp.rooms.invite.items():
            await self._on_invite(room_id, info.invite_state)
        for room_id, info in resp.rooms.join.items():
            self._note_pairs(room_id, list(info.state) + list(info.timeline.events))
            if self._note_state is not None:
                self._note_state(room_id, list(info.state) + list(info.timeline.events))
            if initial:
                continue  # events from before the bot existed are history, not requests
            events = list(info.timeline.events)
            new_room = any(isinstance(e, RoomCreateEvent) for e in list(info.state) + events)
            if info.timeline.limited and since and info.timeline.prev_batch and not new_room:
                # A gap (long outage, busy room): fetch what the sync left out. If this
                # fails, the batch fails and is retried from the same token: nothing lost.
                if self._gap_without_paging is not None and await self._gap_without_paging(room_id):
                    log.info("sync.gap_skipped", room_id=room_id)
                else:
                    events = await missed_events(self._client, room_id, info.timeline.prev_batch, since) + events
                    log.info("sync.gap_filled", room_id=room_id, events=len(events))
            for event in events:
                try:
                    await self.on_event(room_id, event)
                except Exception:  # noqa: BLE001 - one bad event must not stop the bot
                    log.exception("event.failed", room_id=room_id, event_id=getattr(event, "event_id", None))
        self._wake()

    def _note_pairs(self, room_id: str, events: list[Any]) -> None:
        """Remember the pair named in the bot's own `carebot.pair` state (rooms are found again
        from it if the database is lost)."""
        for event in events:
            if isinstance(event, UnknownEvent) and event.type == PAIR_STATE:
                content = event.source.get("content", {})
                if event.sender == self._client.user_id and {"patient", "practitioner"} <= set(content):
                    self._state.seen_pairs[room_id] = (content["patient"], content["practitioner"])

    async def on_event(self, room_id: str, event: Any) -> None:
        """One room event, from the sync or decrypted late."""
        if getattr(event, "sender", None) == self._client.user_id:
            return
        record = await self._store.room(room_id)
        if record is None:
            if self._other_rooms is not None:
                await self._other_rooms(room_id, event)
            return  # not a pair room (nor a desk): the bot says nothing there
        pair = self._state.care.roster.pair(record.patient_id, record.practitioner_id)
        for handler in self._handlers:
            if not isinstance(event, handler.kinds):
                continue
            if handler.active_pairs_only and (record.state != "active" or pair is None or not pair.verified):
                return
            await handler.handle(record, pair, event)
            return
