"""Invites to the bot: a stranger reads one short, polite refusal (nothing about any patient)
and the bot leaves; a roster member is told where to write.

A stranger who keeps inviting the bot is told once a day at most (STRANGER_QUIET_S); later
invites are declined without a word, so invites cannot make the bot talk without bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog
from nio import AsyncClient, InviteMemberEvent

from bot.matrix.messages import notice
from bot.runtime.shared import LEAVE_AFTER, TO, LiveState, Wake, txn_for
from bot.store import Store

log = structlog.get_logger("carebot")

STRANGER_QUIET_S = 24 * 3600


class Invites:
    def __init__(
        self, client: AsyncClient, store: Store, state: LiveState, wake: Wake, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._store = store
        self._state = state
        self._wake = wake
        self._clock = clock
        self._strangers_told: dict[str, float] = {}

    def _tell_stranger(self, inviter: str) -> bool:
        """True the first time in STRANGER_QUIET_S that this stranger invites the bot."""
        now = self._clock()
        told = self._strangers_told.get(inviter)
        if told is not None and now - told < STRANGER_QUIET_S:
            return False
        self._strangers_told = {k: v for k, v in self._strangers_told.items() if now - v < STRANGER_QUIET_S}
        self._strangers_told[inviter] = now
        return True

    async def on_invite(self, room_id: str, invite_state: list[Any]) -> None:
        inviter = None
        for event in invite_state:
            if isinstance(event, InviteMemberEvent) and event.state_key == self._client.user_id:
                inviter = event.sender
        care = self._state.care
        stranger = inviter is not None and not care.roster.is_known(inviter)
        if inviter is None or (stranger and not self._tell_stranger(inviter)):
            await self._client.room_leave(room_id)
            log.info("invite.declined", room_id=room_id, reason="stranger")
            return
        # Someone inviting the bot to a room of their own: join, say one thing, leave.
        join = await self._client.join(room_id)
        if getattr(join, "room_id", None) is None:
            return
        locale = care.locale_for_mxid(inviter)
        if stranger:  # not in the roster: a polite refusal that says nothing about anyone
            text = care.texts.get("stranger_invite", locale)
        elif care.roster.verified_pairs_for_mxid(inviter):
            text = care.texts.get("use_your_channel", locale)
        else:  # in the roster, but no practitioner of theirs offers messaging
            text = care.texts.get("stranger_refusal", locale)
        async with self._store.transaction():
            await self._store.enqueue(
                txn_for("invite", room_id), room_id, {**notice(text), TO: [inviter], LEAVE_AFTER: True}
            )
        log.info("invite.explained", room_id=room_id, reason="stranger" if stranger else "roster_member")
