"""Send queued replies: rooms in parallel, each room's messages in order.

Each item has a fixed transaction id, so a resend after a crash is de-duplicated by the
homeserver. What fails stays queued, in place, and is retried with backoff.
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
from bot.runtime.shared import LEAVE_AFTER, PIN, TO
from bot.store import OutboxItem, Store

log = structlog.get_logger("carebot")

PARALLEL_ROOMS = 8
BATCH = 500

# (room id, {user id: unsigned device ids}) -> queue the practitioner's warnings
UnsignedHook = Callable[[str, dict[str, list[str]]], Awaitable[None]]


class Outbox:
    def __init__(
        self, client: AsyncClient, store: Store, trust: DeviceTrust, *, tofu: bool, on_unsigned: UnsignedHook
    ) -> None:
        self._client = client
        self._store = store
        self._trust = trust
        self._tofu = tofu
        self._on_unsigned = on_unsigned
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set; an item being sent then is finished (sent and removed from
        the outbox) before returning: see `runtime._main`, which waits for it."""
        failures = 0
        sem = asyncio.Semaphore(PARALLEL_ROOMS)

        async def drain(items: list[OutboxItem]) -> bool:
            async with sem:
                for item in items:
                    if stop.is_set():
                        return True  # stopping: what is not started stays queued
                    try:
                        event_id = await self.send_item(item)
                    except Exception as e:  # noqa: BLE001 - network trouble: keep it for later
                        log.warning("outbox.send_error", room_id=item.room_id, error=type(e).__name__)
                        event_id = None
                    if event_id is None:
                        return False  # later messages of this room wait for this one
                    async with self._store.transaction():
                        await self._store.sent(item.id)
                    log.info("outbox.sent", room_id=item.room_id, event_id=event_id)
                return True

        while not stop.is_set():
            self._wake.clear()
            by_room: dict[str, list[OutboxItem]] = {}
            for item in await self._store.outbox(limit=BATCH):
                by_room.setdefault(item.room_id, []).append(item)
            results = await asyncio.gather(*(drain(items) for items in by_room.values()))
            if not all(results):
                failures += 1
                delay = Backoff(base=0.5, cap=10).delay(failures)
            else:
                failures = 0
                delay = 0.0 if len(by_room) and sum(map(len, by_room.values())) >= BATCH else 30.0
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass

    async def send_item(self, item: OutboxItem) -> str | None:
        """Send one outbox item (and its pin or leave); the event id once all of it is done."""
        content: dict[str, Any] = dict(item.content)
        to = content.pop(TO, None)
        if to is None:
            room = self._client.rooms.get(item.room_id)
            to = list(room.users) if room is not None else []
        pin = content.pop(PIN, False)
        leave = content.pop(LEAVE_AFTER, False)
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
