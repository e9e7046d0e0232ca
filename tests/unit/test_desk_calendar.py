"""Business days (weekends and French public holidays from the `holidays` library), the digest
and reminder schedule against a controlled clock, and the absence rules."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest

from bot.desk.absence import Absence, notice_due, parse_return_date
from bot.desk.calendar import BusinessCalendar, check_country
from bot.desk.turnaround import Turnaround

PARIS = ZoneInfo("Europe/Paris")
FR = BusinessCalendar()


def d(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


def paris(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s).replace(tzinfo=PARIS)


# -- business days ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("day", "business"),
    [
        ("2026-11-27", True),  # Friday
        ("2026-11-28", False),  # Saturday
        ("2026-11-29", False),  # Sunday
        ("2026-11-11", False),  # Armistice, a Wednesday
        ("2026-05-14", False),  # Ascension (moves with Easter)
        ("2026-05-25", False),  # Whit Monday
        ("2026-04-06", False),  # Easter Monday
        ("2026-12-25", False),  # Christmas
        ("2026-12-26", False),  # Saturday (not a holiday in France outside Alsace-Moselle)
        ("2027-01-01", False),  # New year, next year's table
        ("2026-12-24", True),
    ],
)
def test_business_days_skip_weekends_and_french_public_holidays(day: str, business: bool) -> None:
    assert FR.is_business_day(d(day)) is business


def test_alsace_moselle_has_its_own_holidays() -> None:
    moselle = BusinessCalendar("FR", "57")
    assert moselle.is_business_day(d("2026-04-03")) is False  # Good Friday
    assert FR.is_business_day(d("2026-04-03")) is True


def test_age_in_business_days_counts_days_after_the_request() -> None:
    assert FR.business_days_after(d("2026-11-27"), d("2026-11-27")) == 0
    assert FR.business_days_after(d("2026-11-27"), d("2026-11-30")) == 1  # Friday -> Monday
    assert FR.business_days_after(d("2026-11-27"), d("2026-12-02")) == 3
    # Tuesday 10 Nov -> Friday 13 Nov skips Armistice (Wednesday 11).
    assert FR.business_days_after(d("2026-11-10"), d("2026-11-13")) == 2
    # Over Christmas and New Year: 24 Dec (Thu) -> 4 Jan (Mon) = 28, 29, 30, 31 Dec, 4 Jan.
    assert FR.business_days_after(d("2026-12-24"), d("2027-01-04")) == 5
    assert FR.business_days_after(d("2026-12-02"), d("2026-11-27")) == 0


def test_adding_business_days_lands_after_weekends_and_holidays() -> None:
    assert FR.add_business_days(d("2026-11-27"), 1) == d("2026-11-30")
    assert FR.add_business_days(d("2026-05-13"), 1) == d("2026-05-15")  # Ascension Thursday skipped
    assert FR.add_business_days(d("2026-05-22"), 1) == d("2026-05-26")  # weekend + Whit Monday
    assert FR.next_business_day(d("2026-12-25")) == d("2026-12-28")
    with pytest.raises(ValueError):
        FR.add_business_days(d("2026-05-22"), 0)


def test_unknown_country_or_subdivision_is_explained() -> None:
    assert check_country("FR", None) is None
    assert "unknown country code 'ZZ'" in (check_country("ZZ", None) or "")
    problem = check_country("FR", "999") or ""
    assert "unknown subdivision '999'" in problem and "57" in problem


# -- digest and reminders ------------------------------------------------------------------------
@dataclass(frozen=True)
class Req:
    id: int
    created_at: float


T = Turnaround(FR, PARIS, dt.time(8, 0), 2)


def test_digest_is_due_once_per_business_morning_when_something_is_pending() -> None:
    monday_7 = paris("2026-11-30T07:59")
    monday_8 = paris("2026-11-30T08:00")
    assert not T.digest_due(monday_7, None, pending=3)
    assert T.digest_due(monday_8, None, pending=3)
    assert not T.digest_due(monday_8, d("2026-11-30"), pending=3)  # already sent today
    assert not T.digest_due(monday_8, None, pending=0)  # nothing pending: no digest
    assert not T.digest_due(paris("2026-11-29T09:00"), None, pending=3)  # Sunday
    assert not T.digest_due(paris("2026-12-25T09:00"), None, pending=3)  # Christmas
    assert T.digest_due(paris("2026-11-30T09:59"), None, pending=3)
    assert not T.digest_due(paris("2026-11-30T10:00"), None, pending=3)  # the morning is over: not at lunch


def test_digest_time_is_the_clinic_local_time_across_daylight_saving() -> None:
    # 08:00 in Paris is 07:00 UTC in winter and 06:00 UTC in summer.
    assert T.morning_open(dt.datetime(2026, 11, 30, 7, 0, tzinfo=dt.timezone.utc))
    assert not T.morning_open(dt.datetime(2026, 11, 30, 6, 59, tzinfo=dt.timezone.utc))
    assert T.morning_open(dt.datetime(2026, 6, 30, 6, 0, tzinfo=dt.timezone.utc))


def test_next_wake_is_the_next_business_morning() -> None:
    friday_9 = paris("2026-11-27T09:00")
    assert T.next_wake(friday_9) == paris("2026-11-30T08:00").astimezone(dt.timezone.utc)
    assert T.next_wake(paris("2026-11-30T07:00")) == paris("2026-11-30T08:00").astimezone(dt.timezone.utc)
    assert T.next_wake(paris("2026-12-24T09:00")) == paris("2026-12-28T08:00").astimezone(dt.timezone.utc)


def test_reminder_after_more_than_n_business_days_once_per_request() -> None:
    friday = Req(1, paris("2026-11-27T16:00").timestamp())
    tuesday = Req(2, paris("2026-12-01T10:00").timestamp())
    # Tuesday 1 Dec: Friday's request is 2 business days old — not yet "more than 2".
    assert T.reminders_due(paris("2026-12-01T08:30"), [friday, tuesday], set()) == []
    wednesday = paris("2026-12-02T08:30")
    assert T.reminders_due(wednesday, [tuesday, friday], set()) == [friday]
    assert T.reminders_due(wednesday, [tuesday, friday], {1}) == []  # already reminded
    assert T.reminders_due(paris("2026-12-02T07:30"), [friday], set()) == []  # before the morning time
    assert T.overdue(friday, wednesday) and not T.overdue(tuesday, wednesday)


def test_holidays_delay_reminders() -> None:
    # Made on Tuesday 10 Nov; Wednesday 11 is Armistice: Friday 13 is only 2 business days.
    req = Req(1, paris("2026-11-10T10:00").timestamp())
    assert T.reminders_due(paris("2026-11-13T09:00"), [req], set()) == []
    assert T.reminders_due(paris("2026-11-16T09:00"), [req], set()) == [req]


# -- absences ---------------------------------------------------------------------------------
TODAY = d("2026-11-26")


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("2026-12-07", d("2026-12-07")),
        ("07/12/2026", d("2026-12-07")),
        ("7.12.26", d("2026-12-07")),
        ("7/12", d("2026-12-07")),
        ("03/01", d("2027-01-03")),  # no year: the next such day
        ("2026-12-07,", d("2026-12-07")),
        ("demain", "bad_date"),
        ("31/02/2027", "bad_date"),
        ("2026-11-26", "not_future"),
        ("2025-12-01", "not_future"),
        ("2028-01-01", "too_far"),
    ],
)
def test_return_date_forms(typed: str, expected: object) -> None:
    assert parse_return_date(typed, TODAY) == expected


def test_absence_notice_once_a_day_while_away() -> None:
    away = Absence("dr-martin", d("2026-12-07"))
    assert notice_due(away, TODAY, None)
    assert not notice_due(away, TODAY, TODAY)  # told today already
    assert notice_due(away, d("2026-11-27"), TODAY)  # a new day
    assert not notice_due(away, d("2026-12-07"), None)  # back
    assert not notice_due(None, TODAY, None)
