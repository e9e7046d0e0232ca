"""Send slots: at most N messages on the wire at once, the patient-facing ones first.

A waiter for a background message (a notice queued for the practitioner's desk) lets every
waiting foreground one (a reply in a pair room) go before it, so that a burst of renewals
answers the patients first and posts its desk notices right after. One that has waited
`max_wait_s` goes in turn with the others, so a steady stream of replies never starves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field


@dataclass(eq=False)
class _Waiter:
    since: float
    seq: int
    background: bool = field(compare=False)
    granted: asyncio.Future[None] = field(compare=False)


class SendSlots:
    def __init__(self, size: int, max_wait_s: float = 5.0, clock: Callable[[], float] | None = None) -> None:
        self._free = size
        self._max_wait_s = max_wait_s
        self._clock = clock
        self._waiters: list[_Waiter] = []  # in arrival order
        self._seq = itertools.count()

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @contextlib.asynccontextmanager
    async def slot(self, background: bool = False) -> AsyncIterator[None]:
        """`async with slots.slot(background=...):` holds one slot while it sends."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
        else:
            waiter = _Waiter(self._now(), next(self._seq), background, asyncio.get_running_loop().create_future())
            self._waiters.append(waiter)
            try:
                await waiter.granted
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif waiter.granted.done() and not waiter.granted.cancelled():
                    self._release()  # granted as it was cancelled: pass the slot on
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        # A waiter whose task was just cancelled has a cancelled future but is still listed
        # until that task runs its handler: it is skipped (and removed) here.
        self._waiters = [w for w in self._waiters if not w.granted.done()]
        waiter = self._next()
        if waiter is None:
            self._free += 1
            return
        self._waiters.remove(waiter)
        waiter.granted.set_result(None)  # the slot goes straight to it

    def _next(self) -> _Waiter | None:
        if not self._waiters:
            return None
        oldest = self._waiters[0]
        if not oldest.background or self._now() - oldest.since >= self._max_wait_s:
            return oldest
        return next((w for w in self._waiters if not w.background), oldest)
