"""Messages the bot cannot decrypt yet: ask the sender's devices for the key, retry, and tell the
sender only if the key never comes."""

from __future__ import annotations

import time

import structlog
from nio import AsyncClient, MegolmEvent, RoomMessageText

from bot.care.roster import Pair
from bot.matrix import nio_private
from bot.matrix.client import request_room_key
from bot.matrix.messages import notice
from bot.runtime.shared import TO, EventHandler, LiveState, Wake, txn_for
from bot.store import RoomRecord, Store

log = structlog.get_logger("carebot")


class UndecryptableMessages:
    kinds = (MegolmEvent,)
    active_pairs_only = True

    def __init__(
        self, client: AsyncClient, store: Store, state: LiveState, wait_s: float, wake: Wake
    ) -> None:
        self._client = client
        self._store = store
        self._state = state
        self._wait_s = wait_s
        self._wake = wake
        self._kept: set[tuple[str, str, str]] = set()  # owner-forwarded sessions already stored

    async def handle(self, record: RoomRecord, pair: Pair | None, event: MegolmEvent) -> None:
        """Ask the sender's devices for the missing key and wait for it; the sender is told only
        if it never comes."""
        if await self._store.is_processed(event.event_id):
            return
        try:
            asked = await request_room_key(self._client, record.room_id, event)
        except Exception as e:  # noqa: BLE001 - the homeserver is away: the retry still waits
            log.warning("message.key_request_failed", room_id=record.room_id, error=type(e).__name__)
            asked = False
        deadline = time.time() + self._wait_s
        async with self._store.transaction():
            await self._store.add_undecryptable(event.event_id, record.room_id, deadline, event.source)
        log.info("message.key_requested", room_id=record.room_id, event_id=event.event_id, asked=asked)

    async def retry(self, redeliver: EventHandler) -> None:
        """Try again the events that could not be decrypted; give up politely at the deadline.

        A message decrypted late goes to `redeliver`, as if it had just arrived. Sessions the
        sending device handed back itself are remembered first, so that they stay first-hand
        for the trust check after a restart."""
        store = self._store
        new = nio_private.owner_forwarded_sessions(self._client) - self._kept
        if new:
            async with store.transaction():
                await store.remember_owner_forwarded(sorted(new))
            self._kept |= new
        for pending in await store.undecryptables():
            event = MegolmEvent.from_dict(pending.source)
            room_id = pending.room_id
            event.room_id = room_id
            try:
                decrypted = self._client.decrypt_event(event)
            except Exception:  # noqa: BLE001 - still no key
                decrypted = None
            if decrypted is not None and not isinstance(decrypted, RoomMessageText):
                async with store.transaction():
                    await store.drop_undecryptable(pending.event_id)  # an image or a file: nothing to answer
                continue
            if isinstance(decrypted, RoomMessageText):
                async with store.transaction():
                    await store.drop_undecryptable(pending.event_id)
                log.info("message.decrypted_late", room_id=room_id, event_id=event.event_id)
                await redeliver(room_id, decrypted)
                continue
            if time.time() < pending.deadline:
                continue
            care = self._state.care
            record = await store.room(room_id)
            pair = care.roster.pair(record.patient_id, record.practitioner_id) if record else None
            async with store.transaction():
                await store.drop_undecryptable(pending.event_id)
                if pair is None or await store.is_processed(event.event_id):
                    continue
                locale = care.locale_of(pair, event.sender)
                content = notice(care.texts.get("undecryptable", locale), reply_to=event.event_id)
                content[TO] = [pair.patient.matrix_id, pair.practitioner.matrix_id]
                await store.enqueue(txn_for(event.event_id, "utd"), room_id, content)
                await store.mark_processed(event.event_id, room_id)
            log.warning("message.undecryptable", room_id=room_id, event_id=event.event_id)
            self._wake()
