"""What the running bot's components share: the care context in force, and outbox addressing.

`LiveState.care` is replaced as a whole on reload; components read it at the moment they need
it, so a reload takes effect for the next event without rebuilding anything.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.care.service import CareContext

# Internal outbox keys, stripped before sending.
TO = "_carebot_to"  # the members the message is encrypted for (None: whoever is in the room)
PIN = "_carebot_pin"  # pin the message once sent
LEAVE_AFTER = "_carebot_leave_after"  # leave the room once sent
BACKGROUND = "_carebot_background"  # may wait while patients' replies go out first (outbox.py)

# The small interfaces components depend on.
Wake = Callable[[], None]  # "there is something new in the outbox"
EventHandler = Callable[[str, Any], Awaitable[None]]  # (room id, nio event)


async def settle(aws: Iterable[Awaitable[Any]]) -> None:
    """Await every one, then raise the first error. (`asyncio.gather` raises at the first error
    and leaves the others running: a room creation still in flight after a reconciliation
    has failed would race the retry, and the pair, desk or Space would get a second room.)"""
    results = await asyncio.gather(*aws, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def txn_for(*parts: str) -> str:
    """A transaction id derived from what caused the message: the same cause, the same id."""
    return "cb" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


@dataclass
class LiveState:
    care: CareContext
    # room id -> (patient id, practitioner id), from the bot's own `carebot.pair` room state
    seen_pairs: dict[str, tuple[str, str]] = field(default_factory=dict)
    file_stamp: tuple[float, ...] = ()
