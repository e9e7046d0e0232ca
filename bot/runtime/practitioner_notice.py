"""One door for what is addressed to the practitioner alone (a refused command from one of
their devices, a member's identity reset).

Today it queues, inside the caller's transaction, an m.notice in the pair room that mentions
the practitioner (the practitioner-facing path of a pair room, as the unsigned-device warnings
use). The practitioner desk (branch `desk`) plugs in HERE: once a practitioner has a desk room,
this function posts there instead, and nothing else changes for the callers.
"""

from __future__ import annotations

from bot.care.roster import Pair
from bot.matrix.messages import notice
from bot.runtime.shared import TO, txn_for
from bot.store import Store


async def notify_practitioner(store: Store, pair: Pair, room_id: str, text: str, *cause: str) -> None:
    """Queue `text` for the practitioner of `pair` (call inside a store transaction; the caller
    wakes the outbox). `cause` makes the transaction id: the same cause is told once."""
    practitioner = pair.practitioner
    content = notice(text, mentions=[(practitioner.matrix_id, practitioner.display_name)])
    content[TO] = [pair.patient.matrix_id, practitioner.matrix_id]
    await store.enqueue(txn_for("practitioner", room_id, *cause), room_id, content)
