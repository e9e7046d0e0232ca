"""A homeserver that rate-limits the bot hard: every room still gets made, nothing is dropped."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import yaml

from bot.devserver import RATE_LIMITS, Homeserver
from tests.integration.helpers import make_clinic, running_bot

pytestmark = pytest.mark.integration


async def test_429_retry_after_is_honoured_for_room_creation_invites_and_sends(tmp_path, caplog):
    strict = dict(RATE_LIMITS)
    tight = {"per_second": 0.5, "burst_count": 2}
    strict["rc_message"] = tight
    strict["rc_room_creation"] = tight
    strict["rc_invites"] = {"per_room": tight, "per_user": tight, "per_issuer": tight}
    hs = Homeserver(tmp_path / "hs", rate_limits=strict)
    hs.start()
    try:
        counter = iter(range(1000))
        clinic = make_clinic(tmp_path, hs, lambda p: (hs.register(f"{p}{next(counter)}", "pw-long-1"), "pw-long-1"))
        roster = yaml.safe_load((tmp_path / "roster.yaml").read_text())
        recent = (dt.date.today() - dt.timedelta(days=10)).isoformat()
        for n in range(2, 7):
            mxid = hs.register(f"extra{n}", "pw-long-1")
            roster["patients"].append(
                {"id": f"pat-{n}", "matrix_id": mxid, "display_name": f"P {n}",
                 "care": [{"practitioner": "dr-a", "last_consultation": recent, "treatments": []}]}
            )
        clinic.write_roster(roster)
        caplog.set_level(logging.WARNING, logger="nio")
        async with running_bot(clinic.config_path, ready_timeout=180) as bot:
            rooms = await bot.store.rooms()
            assert len(rooms) == 6
            assert len({r.room_id for r in rooms}) == 6
        assert any("429" in r.getMessage() or "ratelimit" in r.getMessage().lower() for r in caplog.records), (
            "the homeserver never rate-limited the bot: the test proves nothing"
        )
    finally:
        hs.stop()
