"""Send queued replies: rooms in parallel, each room's messages in order.

Each item has a fixed transaction id, so a resend after a crash is de-duplicated by the
homeserver. What fails stays queued, in place, and is retried with backoff.

A sent item is removed from the outbox by one transaction for all the items sent meanwhile
(`_mark`), not one per item: a burst of replies costs a few transactions, and a sender does
not wait for the database before its room's next message. Until that transaction commits
the item is remembered as sent (`_unmarked`) and never handed to a sender again; a crash
before it commits leaves the item queued, and the next start sends it again under the same
transaction id, which the homeserver de-duplicates: the window is the one a crash between
the send and its mark always had, a few milliseconds longer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from nio import AsyncClient, RoomPutStateResponse

from bot.faults import crash_point
from bot.matrix.client import Backoff, send_encrypted
from bot.matrix.trust import DeviceTrust
from bot.runtime.send_slots import SendSlots
from bot.runtime.shared import BACKGROUND, LEAVE_AFTER, PIN, TO
from bot.store import OutboxItem, Store

log = structlog.get_logger("carebot")

PARALLEL_ROOMS = 8  # messages on the wire at once (bench/fair.py gives the echo bot as many)
BATCH = 500
BACKGROUND_MAX_WAIT_S = 5.0  # a desk notice waits behind patients' replies at most this long
SETTLE_MAX_S = 1.0  # how long the next sync may wait for the messages being sent (`settled`)

# (room id, {user id: unsigned device ids}) -> queue the practitioner's warnings
UnsignedHook = Callable[[str, dict[str, list[str]]], Awaitable[None]]


class Outbox:
    """One sender task per room with something queued (at most PARALLEL_ROOMS messages on
    the wire at once): a room's messages go in order, and a slow or failing room holds up no
    other. A reply is handed to its room's sender as soon as it is committed (`wake`). A slot
    is taken per message, so a room with many (a practitioner's desk after a burst) does not
    keep one; messages marked BACKGROUND (desk notices) let the waiting replies go first."""

    def __init__(
        self, client: AsyncClient, store: Store, trust: DeviceTrust, *, tofu: bool, on_unsigned: UnsignedHook
    ) -> None:
        self._client = client
        self._store = store
        self._trust = trust
        self._tofu = tofu
        self._on_unsigned = on_unsigned
        self._wake = asyncio.Event()
        self._senders: dict[str, asyncio.Task[bool]] = {}  # room id -> its sender, while it sends
        self._failures: dict[str, int] = {}  # room id -> failed rounds in a row
        self._retry_at: dict[str, float] = {}  # room id -> when to try a failed room again
        self.looked = 0  # how many times it has read its queue (what tests wait on)
        self._stop: asyncio.Event | None = None  # set while `run` runs
        self._slots = SendSlots(PARALLEL_ROOMS, BACKGROUND_MAX_WAIT_S)
        self._unmarked: set[int] = set()  # ids sent, whose removal from the outbox is not committed yet
        self._marker: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()  # set while no room is sending
        self._idle.set()

    def wake(self) -> None:
        """New replies are committed: hand them to their rooms' senders now (while `run` runs),
        so a reply starts out at the caller's next await, not after the rest of the batch."""
        self._wake.set()
        if self._stop is not None and not self._stop.is_set():
            self._dispatch()

    async def settled(self, at_most: float = SETTLE_MAX_S) -> None:
        """Until no room is sending, or `at_most` seconds. The sync loop waits on it before
        its next sync, as the echo baseline sends its replies before syncing again: the
        bot's own messages of a burst then come back in one sync, not one sync each (each
        makes the homeserver compute a sync while it is busiest)."""
        if not self._idle.is_set():
            try:
                await asyncio.wait_for(self._idle.wait(), at_most)
            except asyncio.TimeoutError:
                pass

    def _note_idle(self) -> None:
        if self._senders:
            self._idle.clear()
        else:
            self._idle.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set; an item being sent then is finished (sent and removed from
        the outbox) before returning: see `runtime._main`, which waits for it."""
        self._stop = stop
        try:
            while not stop.is_set():
                self._wake.clear()
                waits = self._dispatch()
                try:  # woken by a new reply, or by a sender that ended (more may be queued)
                    await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, min(waits)) if waits else 30.0)
                except asyncio.TimeoutError:
                    pass
        finally:
            await asyncio.gather(*self._senders.values(), return_exceptions=True)
            if self._marker is not None:  # what was sent is removed from the outbox before returning
                await asyncio.gather(self._marker, return_exceptions=True)

    def _dispatch(self) -> list[float]:
        """Start a sender for each room with queued replies and none running (unless the room
        is waiting to retry); the seconds until those retries."""
        assert self._stop is not None
        now = asyncio.get_running_loop().time()
        by_room: dict[str, list[OutboxItem]] = {}
        for item in self._store.queued(limit=BATCH):
            if item.id not in self._unmarked:  # sent already: only its removal is pending
                by_room.setdefault(item.room_id, []).append(item)
        self.looked += 1
        for room_id, items in by_room.items():
            if room_id not in self._senders and self._retry_at.get(room_id, now) <= now:
                task = asyncio.create_task(self._send_room(room_id, items, self._stop))
                self._senders[room_id] = task
                task.add_done_callback(lambda _t, r=room_id: self._done(r))
        self._note_idle()
        return [t - now for r, t in self._retry_at.items() if r in by_room and r not in self._senders]

    def _done(self, room_id: str) -> None:
        """A room's sender ended: look again (more may have been queued meanwhile)."""
        task = self._senders.pop(room_id)
        if task.cancelled() or task.exception() is not None or not task.result():
            failures = self._failures.get(room_id, 0) + 1
            self._failures[room_id] = failures
            self._retry_at[room_id] = asyncio.get_running_loop().time() + Backoff(base=0.5, cap=10).delay(failures - 1)
        else:
            self._failures.pop(room_id, None)
            self._retry_at.pop(room_id, None)
        self.wake()
        self._note_idle()

    async def _send_room(self, room_id: str, items: list[OutboxItem], stop: asyncio.Event) -> bool:
        """Send one room's items in order; False at the first that could not be sent (it and
        the later ones stay queued, in place)."""
        for item in items:
            if stop.is_set():
                return True  # stopping: what is not started stays queued
            async with self._slots.slot(background=bool(item.content.get(BACKGROUND))):
                if stop.is_set():
                    return True
                try:
                    event_id = await self.send_item(item)
                except Exception as e:  # noqa: BLE001 - network trouble: keep it for later
                    log.warning("outbox.send_error", room_id=room_id, error=type(e).__name__)
                    event_id = None
            if event_id is None:
                return False  # later messages of this room wait for this one
            self._unmarked.add(item.id)
            if self._marker is None or self._marker.done():
                self._marker = asyncio.create_task(self._mark())
            log.info("outbox.sent", room_id=room_id, event_id=event_id)
        return True

    async def _mark(self) -> None:
        """Remove the sent items from the outbox, all those sent meanwhile in one transaction.
        If the database fails they stay remembered as sent (never sent again by this process)
        and it is tried again; stopping, they stay queued for the next start (see above)."""
        failures = 0
        while self._unmarked:
            ids = sorted(self._unmarked)
            try:
                async with self._store.transaction():
                    await self._store.sent_many(ids)
            except Exception as e:  # noqa: BLE001 - the database is busy or away: try again
                failures += 1
                log.warning("outbox.mark_failed", items=len(ids), error=type(e).__name__)
                if self._stop is None or self._stop.is_set():
                    return
                try:
                    await asyncio.wait_for(self._stop.wait(), Backoff(base=0.5, cap=10).delay(failures - 1))
                except asyncio.TimeoutError:
                    pass
                continue
            failures = 0
            self._unmarked.difference_update(ids)

    async def send_item(self, item: OutboxItem) -> str | None:
        """Send one outbox item (and its pin or leave); the event id once all of it is done."""
        content: dict[str, Any] = dict(item.content)
        to = content.pop(TO, None)
        if to is None:
            room = self._client.rooms.get(item.room_id)
            to = list(room.users) if room is not None else []
        pin = content.pop(PIN, False)
        leave = content.pop(LEAVE_AFTER, False)
        content.pop(BACKGROUND, None)
        unsigned = await self._trust.prepare(set(to) | {self._client.user_id})
        event_id = await send_encrypted(
            self._client,
            item.room_id,
            content,
            item.txn_id,
            to,
            ignore_unverified=self._tofu,
            event_type=item.event_type,
            require_encryption=not leave,  # only the short explanation in a stranger's DM may be clear
        )
        if event_id is None:
            return None
        await self._trust.send_withheld(item.room_id, unsigned)
        if unsigned:
            await self._on_unsigned(item.room_id, unsigned)
            self.wake()
        crash_point("after_send")
        if pin:
            resp = await self._client.room_put_state(
                item.room_id, "m.room.pinned_events", {"pinned": [event_id]}
            )
            if not isinstance(resp, RoomPutStateResponse):
                return None  # sent again later with the same transaction id, then pinned
        if leave:
            await self._client.room_leave(item.room_id)
            await self._client.room_forget(item.room_id)  # and nio drops the room it will not see again
        return event_id
