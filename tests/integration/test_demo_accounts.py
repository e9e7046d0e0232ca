"""Demo accounts (what `make run` creates) carry display names, also when they already exist."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

import pytest

from bot.demo import DEMO_DISPLAY_NAMES, DEMO_USERS

pytestmark = pytest.mark.integration


def _displayname(base_url: str, user_id: str) -> str | None:
    url = f"{base_url}/_matrix/client/v3/profile/{urllib.parse.quote(user_id)}/displayname"
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r).get("displayname")


def test_every_demo_account_has_a_display_name():
    assert set(DEMO_DISPLAY_NAMES) == set(DEMO_USERS)
    assert DEMO_DISPLAY_NAMES["dr.martin"] == "Dr Claire Martin" and DEMO_DISPLAY_NAMES["alice"] == "Alice Dupont"


def test_registration_sets_the_display_name_and_a_second_run_sets_it_again(homeserver):
    user_id = homeserver.register("demo-alice", "pw-demo-alice-1", displayname="Alice Dupont")
    assert _displayname(homeserver.url, user_id) == "Alice Dupont"
    # The account exists (a second `make run`): the name is set again, no error.
    assert homeserver.register("demo-alice", "pw-demo-alice-1", displayname="Alice D.") == user_id
    assert _displayname(homeserver.url, user_id) == "Alice D."
