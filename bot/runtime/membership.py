"""Membership of pair rooms: intruders removed, members who left noted for a re-invite, and the
disclaimer banner released when members join."""

from __future__ import annotations

import structlog
from nio import AsyncClient, RoomMemberEvent

from bot.care.roster import Pair
from bot.matrix.messages import notice
from bot.runtime.shared import TO, LiveState, Wake, txn_for
from bot.store import RoomRecord, Store

log = structlog.get_logger("carebot")

# pending_banners audiences
FIRST_MEMBER = "first_member"
PATIENT = "patient"


class Membership:
    kinds = (RoomMemberEvent,)
    active_pairs_only = False  # intruders are removed from closed rooms too

    def __init__(self, client: AsyncClient, store: Store, state: LiveState, wake: Wake) -> None:
        self._client = client
        self._store = store
        self._state = state
        self._wake = wake

    async def handle(self, record: RoomRecord, pair: Pair | None, event: RoomMemberEvent) -> None:
        bot = self._client.user_id
        member = event.state_key
        allowed = {bot}
        if pair is not None:
            allowed |= {pair.patient.matrix_id, pair.practitioner.matrix_id}
        if member in allowed and member != bot:
            if event.membership == "join" and pair is not None:
                await self.release_banner(record.room_id, by_patient=member == pair.patient.matrix_id)
            if event.membership == "leave":
                # Left or rejected the invite: the room is kept and they are invited again at
                # the next reconciliation (start or roster reload). Never a second room.
                async with self._store.transaction():
                    await self._store.need_reinvite(record.room_id, member)
                    await self._store.audit("bot", "room.member_left", record.room_id)
            return
        if event.membership not in ("join", "invite"):
            return
        await self._client.room_kick(record.room_id, member, reason="carebot: private channel")
        log.warning("room.intruder_removed", room_id=record.room_id, pair=f"{record.patient_id}/{record.practitioner_id}")
        if pair is None:
            return
        care = self._state.care
        async with self._store.transaction():
            if await self._store.is_processed(event.event_id):
                return
            locale = care.locale_of(pair, pair.practitioner.matrix_id)
            text = care.texts.get("intruder_removed", locale, user=member)
            content = notice(text, mentions=[(pair.practitioner.matrix_id, pair.practitioner.display_name)])
            content[TO] = [pair.patient.matrix_id, pair.practitioner.matrix_id]
            await self._store.enqueue(txn_for(event.event_id, "intruder"), record.room_id, content)
            await self._store.audit("bot", "room.intruder_removed", record.room_id)
            await self._store.mark_processed(event.event_id, record.room_id)

    async def release_banner(self, room_id: str, by_patient: bool) -> None:
        """Post the banner when the first member joins; again for a patient who joins later.

        A client only shows an encrypted message in Element's "exclude insecure devices" mode
        if it knew the sender's device when it first tried to decrypt it, and it starts
        fetching the bot's devices when it joins. So the banner goes out at the first join
        (still the room's first message: nobody writes before joining), and if the practitioner
        was first, a copy is posted — and pinned — when the patient arrives. A client whose
        /keys/query answer comes after the banner still refuses it until it restarts; the bot
        cannot see that moment (README, "A banner read too early").
        """
        store = self._store
        async with store.transaction():
            pending = await store.pending_banner(room_id, FIRST_MEMBER)
            if pending is not None:
                await store.enqueue(txn_for("disclaimer", room_id), room_id, pending)
                await store.drop_pending_banner(room_id, FIRST_MEMBER)
                if not by_patient:
                    await store.save_pending_banner(room_id, PATIENT, pending)
            elif by_patient:
                again = await store.pending_banner(room_id, PATIENT)
                if again is None:
                    return
                await store.enqueue(txn_for("disclaimer-patient", room_id), room_id, again)
                await store.drop_pending_banner(room_id, PATIENT)
            else:
                return
        self._wake()
