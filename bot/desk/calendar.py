"""Business days: weekdays that are not public holidays, from the `holidays` library.

The clinic's country (and optional subdivision, e.g. "57" for Moselle, which has two more
holidays in France) come from the config; France by default.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import holidays


@dataclass(frozen=True)
class BusinessCalendar:
    country: str = "FR"
    subdivision: str | None = None
    _cache: dict[int, holidays.HolidayBase] = field(default_factory=dict, compare=False, repr=False)

    def _holidays(self, year: int) -> holidays.HolidayBase:
        table = self._cache.get(year)
        if table is None:
            table = holidays.country_holidays(self.country, subdiv=self.subdivision, years=year)
            self._cache[year] = table
        return table

    def holiday_name(self, day: dt.date) -> str | None:
        return self._holidays(day.year).get(day)

    def is_business_day(self, day: dt.date) -> bool:
        return day.weekday() < 5 and day not in self._holidays(day.year)

    def business_days_after(self, start: dt.date, end: dt.date) -> int:
        """Business days d with start < d <= end (0 when end <= start).

        A request made on Friday is 1 business day old on Monday, 2 on Tuesday.
        """
        if end <= start:
            return 0
        count = 0
        day = start + dt.timedelta(days=1)
        while day <= end:
            count += self.is_business_day(day)
            day += dt.timedelta(days=1)
        return count

    def add_business_days(self, start: dt.date, n: int) -> dt.date:
        """The n-th business day after `start` (n >= 1)."""
        if n < 1:
            raise ValueError("n must be at least 1")
        day = start
        while n:
            day += dt.timedelta(days=1)
            n -= self.is_business_day(day)
        return day

    def next_business_day(self, day: dt.date) -> dt.date:
        """`day` itself if it is a business day, else the next one."""
        while not self.is_business_day(day):
            day += dt.timedelta(days=1)
        return day


def check_country(country: str, subdivision: str | None) -> str | None:
    """None if the `holidays` library knows this country/subdivision, else what is wrong."""
    supported = holidays.list_supported_countries()
    if country not in supported:
        return f"unknown country code '{country}'. Use an ISO 3166 code such as 'FR'."
    if subdivision is not None and subdivision not in supported[country]:
        return f"unknown subdivision '{subdivision}' for {country}; known: {', '.join(supported[country])}. Fix it or remove it."
    return None
