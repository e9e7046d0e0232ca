from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.care.renewals import InvalidTransition, Status, can_transition, format_id, initial_status, parse_id, renewal_content, transition


@pytest.mark.parametrize("target", [Status.APPROVED, Status.DENIED, Status.CANCELLED])
def test_pending_can_be_decided_or_cancelled(target: Status):
    assert transition(Status.PENDING, target) is target


@pytest.mark.parametrize("current", [s for s in Status if s is not Status.PENDING])
@pytest.mark.parametrize("target", list(Status))
def test_decided_requests_are_final(current: Status, target: Status):
    assert current.is_final
    with pytest.raises(InvalidTransition):
        transition(current, target)


def test_pending_cannot_become_ineligible_or_pending():
    assert not can_transition(Status.PENDING, Status.INELIGIBLE)
    assert not can_transition(Status.PENDING, Status.PENDING)


def test_initial_status_follows_the_policy_decision():
    assert initial_status(True) is Status.PENDING
    assert initial_status(False) is Status.INELIGIBLE


@pytest.mark.parametrize("text", ["R7", "r7", "#R7", "#r7", " R7 ", "7", "R 7", "R07", "R7:", "R7,"])
def test_parse_id_is_tolerant(text: str):
    assert parse_id(text) == 7


@pytest.mark.parametrize("text", ["", "R", "R0", "X7", "R7a", "R-7", "RR7", "R1234567890", "sept"])
def test_parse_id_rejects_garbage(text: str):
    assert parse_id(text) is None


@given(st.integers(min_value=1, max_value=999_999_999))
def test_format_and_parse_round_trip(n: int):
    assert parse_id(format_id(n)) == n


def test_renewal_content_matches_the_contract():
    assert renewal_content(7, Status.INELIGIBLE, "Levothyroxine 75 µg", ["recent-consultation"]) == {
        "id": "R7",
        "status": "ineligible",
        "medication": "Levothyroxine 75 µg",
        "rules": ["recent-consultation"],
    }
    assert renewal_content(7, "pending", "X", ["ignored"])["rules"] == []
