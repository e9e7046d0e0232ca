"""Emergency notices always answer, but mention the practitioner at most once per room per
window (10 minutes): twelve alarming messages in a row give twelve notices with the emergency
numbers and one notification for the practitioner, not twelve.

The memory is per process: after a restart the next emergency mentions the practitioner again,
which errs on the side of telling them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

WINDOW_S = 600.0


class MentionThrottle:
    def __init__(self, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._window_s = window_s
        self._clock = clock
        self._last: dict[str, float] = {}

    def allow(self, room_id: str) -> bool:
        """True (and remembered) if the practitioner may be mentioned in this room now."""
        now = self._clock()
        last = self._last.get(room_id)
        if last is not None and now - last < self._window_s:
            return False
        self._last[room_id] = now
        return True
