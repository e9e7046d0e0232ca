"""Identity pinning for roster members: the first cross-signing master key seen for each is
pinned in the store; a different one later (an identity reset) is audited, told to the
practitioner (`PractitionerNotices`: their desk once it exists) and, for a patient, to the patient in their room. In
`cross-signed` mode the new identity signs nothing in the bot's eyes — its devices get no room
keys and their commands do not count — until the clinic admin runs `carebot trust accept`.
In `tofu` mode the change is reported the same way; keys still go to the member's devices.

Implements the `Pins` interface of bot/matrix/trust.py, which calls it with the master keys it
reads from /keys/query.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from bot.care.roster import Pair
from bot.matrix.messages import notice
from bot.runtime.practitioner_notice import PractitionerNotices
from bot.runtime.shared import TO, LiveState, Wake, txn_for
from bot.store import Store

log = structlog.get_logger("carebot")

PINS_FRESH_S = 2.0  # how long a pin read is used before it is read again


class IdentityPins:
    def __init__(
        self, store: Store, state: LiveState, trust_mode: str, wake: Wake, notices: PractitionerNotices | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._notices = notices or PractitionerNotices(store)
        self._store = store
        self._state = state
        self._cross_signed = trust_mode == "cross-signed"
        self._wake = wake
        self._clock = clock
        self._fresh: dict[str, tuple[float, str | None]] = {}  # user id -> (read at, pinned master key)
        self._members: tuple[object, frozenset[str]] | None = None  # (care context, its members)

    def members(self) -> frozenset[str]:
        """Matrix ids of everyone in a verified pair: the users whose identity is pinned.

        Asked at every device-list change (each new room brings two), so it is worked out once
        per care context (a roster reload replaces the context: then again), not per call: at
        10,000 pairs a scan per call held the event loop while rooms were being made."""
        care = self._state.care
        if self._members is None or self._members[0] is not care:
            out: set[str] = set()
            for pair in care.roster.verified_pairs():
                out.update((pair.patient.matrix_id, pair.practitioner.matrix_id))
            self._members = (care, frozenset(out))
        return self._members[1]

    async def pinned(self, user_ids: list[str], fresh: bool = False) -> dict[str, str]:
        """The pinned master keys, read before every key share: kept for PINS_FRESH_S, so a
        burst of replies makes one database read. A pin this process writes is read again at
        once; `fresh` reads them all again (bot/matrix/trust.py does before refusing a device
        a key, so that `carebot trust accept`, run by another process, counts at once)."""
        now = self._clock()
        stale = [u for u in dict.fromkeys(user_ids) if fresh or now - self._fresh.get(u, (-1e18, None))[0] > PINS_FRESH_S]
        if stale:
            found = await self._store.identity_pins(stale)
            for u in stale:
                self._fresh[u] = (now, found[u].master_key if u in found else None)
        return {u: key for u in user_ids if (key := self._fresh[u][1]) is not None}

    async def pending(self, user_id: str) -> str | None:
        pin = (await self._store.identity_pins([user_id])).get(user_id)
        return None if pin is None else pin.new_master_key

    async def observe(self, master_keys: dict[str, str | None]) -> None:
        """Pin first sightings; report a new master key once."""
        members = self.members()
        told = False
        for user_id, master in master_keys.items():
            if master is None or user_id not in members:
                continue  # no cross-signing (yet), or not someone carebot serves
            roster_id = self._roster_id(user_id)
            self._fresh.pop(user_id, None)  # read the pin again once this is written
            async with self._store.transaction():
                pin = (await self._store.identity_pins([user_id])).get(user_id)
                if pin is None:
                    await self._store.pin_identity(user_id, master)
                    await self._store.audit(roster_id, "identity.pinned", None, {"master_key": master})
                    self._store.db.after_commit(lambda u=user_id: self._fresh.pop(u, None))
                    continue
                if master == pin.master_key:
                    if pin.new_master_key is not None:  # back to the pinned identity
                        await self._store.note_identity_change(user_id, None)
                        await self._store.audit(roster_id, "identity.restored", None, {"master_key": master})
                    continue
                if master == pin.new_master_key:
                    continue  # already reported
                await self._store.note_identity_change(user_id, master)
                await self._store.audit(
                    roster_id, "identity.changed", None,
                    {"pinned": pin.master_key, "new": master, "withheld": self._cross_signed},
                )
                await self._tell(user_id, master)
            log.warning("identity.changed", member=roster_id, withheld=self._cross_signed)
            told = True
        if told:
            self._wake()

    def _roster_id(self, user_id: str) -> str:
        roster = self._state.care.roster
        person = roster.patient_by_mxid(user_id) or roster.practitioner_by_mxid(user_id)
        return person.id if person is not None else "?"

    async def _tell(self, user_id: str, master: str) -> None:
        care = self._state.care
        suffix = "_cross_signed" if self._cross_signed else ""
        for pair in care.roster.verified_pairs_for_mxid(user_id):
            record = await self._store.room_for_pair(pair.patient.id, pair.practitioner.id)
            if record is None or record.state != "active":
                continue
            room_id = record.room_id
            locale = care.locale_of(pair, pair.practitioner.matrix_id)
            if user_id == pair.practitioner.matrix_id:
                # Their own reset: told once (the desk, or one of their rooms), not per patient.
                text = care.texts.get("identity_changed_own" + suffix, locale)
                await self._notices.notify(pair, room_id, text, "identity", user_id, master)
                return
            await self._tell_patient(pair, room_id, master, suffix)
            text = care.texts.get("identity_changed_for_practitioner" + suffix, locale, who=pair.patient.display_name)
            await self._notices.notify(pair, room_id, text, "identity", user_id, master)

    async def _tell_patient(self, pair: Pair, room_id: str, master: str, suffix: str) -> None:
        care = self._state.care
        text = care.texts.get("identity_changed_patient" + suffix, care.locale_of(pair, pair.patient.matrix_id))
        content = notice(text, extra={"carebot.identity_changed": True})
        content[TO] = [pair.patient.matrix_id, pair.practitioner.matrix_id]
        await self._store.enqueue(txn_for("identity", room_id, pair.patient.matrix_id, master), room_id, content)
