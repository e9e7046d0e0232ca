"""Invites to the bot: strangers are declined; a roster member is told where to write."""

from __future__ import annotations

from typing import Any

import structlog
from nio import AsyncClient, InviteMemberEvent

from bot.matrix.messages import notice
from bot.runtime.shared import LEAVE_AFTER, TO, LiveState, Wake, txn_for
from bot.store import Store

log = structlog.get_logger("carebot")


class Invites:
    def __init__(self, client: AsyncClient, store: Store, state: LiveState, wake: Wake) -> None:
        self._client = client
        self._store = store
        self._state = state
        self._wake = wake

    async def on_invite(self, room_id: str, invite_state: list[Any]) -> None:
        inviter = None
        for event in invite_state:
            if isinstance(event, InviteMemberEvent) and event.state_key == self._client.user_id:
                inviter = event.sender
        care = self._state.care
        if inviter is None or not care.roster.is_known(inviter):
            await self._client.room_leave(room_id)
            log.info("invite.declined", room_id=room_id, reason="stranger")
            return
        # A roster member inviting the bot to a room of their own: explain where to write.
        join = await self._client.join(room_id)
        if getattr(join, "room_id", None) is None:
            return
        locale = care.locale_for_mxid(inviter)
        if care.roster.verified_pairs_for_mxid(inviter):
            text = care.texts.get("use_your_channel", locale)
        else:  # in the roster, but no practitioner of theirs offers messaging
            text = care.texts.get("stranger_refusal", locale)
        async with self._store.transaction():
            await self._store.enqueue(
                txn_for("invite", room_id), room_id, {**notice(text), TO: [inviter], LEAVE_AFTER: True}
            )
        log.info("invite.explained", room_id=room_id)
