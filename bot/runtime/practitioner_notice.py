"""One door for what is addressed to the practitioner alone (a refused command from one of
their devices, a member's identity reset).

`PractitionerNotices.notify` queues, inside the caller's transaction, a notice for the
practitioner. The practitioner desk (branch `desk`) plugs in HERE, by passing `desk`: a callable
(practitioner, text, transaction id) -> bool that queues a desk post and says whether the
practitioner has a desk yet — e.g. `lambda p, text, txn: desks.post(p, DeskPost(text), txn,
mention=True)`. Without a desk (today, or before the desk room exists) the notice goes to the
pair room with the practitioner mentioned (the pair room's practitioner-facing path, as the
unsigned-device warnings use).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.care.roster import Pair, Practitioner
from bot.matrix.messages import notice
from bot.runtime.shared import TO, txn_for
from bot.store import Store

DeskPoster = Callable[[Practitioner, str, str], Awaitable[bool]]


class PractitionerNotices:
    def __init__(self, store: Store, desk: DeskPoster | None = None) -> None:
        self._store = store
        self._desk = desk

    async def notify(self, pair: Pair, room_id: str, text: str, *cause: str) -> None:
        """Queue `text` for the practitioner of `pair` (call inside a store transaction; the
        caller wakes the outbox). `cause` makes the transaction id: the same cause, told once."""
        practitioner = pair.practitioner
        txn = txn_for("practitioner", room_id, *cause)
        if self._desk is not None and await self._desk(practitioner, text, txn):
            return
        content = notice(text, mentions=[(practitioner.matrix_id, practitioner.display_name)])
        content[TO] = [pair.patient.matrix_id, practitioner.matrix_id]
        await self._store.enqueue(txn, room_id, content)

    async def to_desk(self, practitioner: Practitioner, desk_room_id: str, text: str, *cause: str) -> bool:
        """Queue `text` in the practitioner's desk (inside the caller's transaction), for what
        concerns no one pair room; False when there is no desk to tell it in."""
        if self._desk is None:
            return False
        return await self._desk(practitioner, text, txn_for("practitioner", desk_room_id, *cause))
