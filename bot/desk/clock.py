"""The desk's clock: wall time, aware, which tests (and a demo) can move."""

from __future__ import annotations

import datetime as dt


class DeskClock:
    def __init__(self) -> None:
        self._offset = dt.timedelta(0)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc) + self._offset

    def travel_to(self, when: dt.datetime) -> None:
        """From now on, `now()` starts at `when` and keeps running."""
        if when.tzinfo is None:
            raise ValueError("give an aware datetime")
        self._offset = when - dt.datetime.now(dt.timezone.utc)
