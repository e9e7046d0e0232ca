"""A room closed by an older carebot (before closed rooms were read-only) is made read-only at
the next start."""

from __future__ import annotations

import sqlite3

import pytest

from tests.integration.helpers import make_clinic, roster_for, running_bot

pytestmark = pytest.mark.integration


async def _events_default(user, room_id: str) -> int:
    resp = await user.client.room_get_state_event(room_id, "m.room.power_levels")
    return int(resp.content.get("events_default", 0))


async def test_a_room_closed_by_an_older_version_is_made_read_only_at_start(homeserver, new_user, tmp_path):
    clinic = make_clinic(tmp_path, homeserver, new_user)
    patient = await clinic.user(clinic.patient, "patient").start()
    try:
        async with running_bot(clinic.config_path):
            room_id = await patient.wait_room()
            await patient.wait_for(lambda s: s.content.get("carebot.disclaimer") is True)
        assert await _events_default(patient, room_id) == 0
        # What an older version left: the pair gone from the roster, the room marked closed in
        # the database, its power levels untouched.
        roster = roster_for(clinic.practitioner[0], clinic.patient[0])
        roster["patients"][0]["care"] = []
        clinic.write_roster(roster)
        db = sqlite3.connect(tmp_path / "data" / "carebot.db")
        db.execute("UPDATE rooms SET state = 'closed'")
        db.commit()
        db.close()
        async with running_bot(clinic.config_path):
            assert await _events_default(patient, room_id) > 50  # above the practitioner's level
            refused = await patient.client.room_send(
                room_id, "m.room.message", {"msgtype": "m.text", "body": "!aide"}, ignore_unverified_devices=True
            )
            assert getattr(refused, "status_code", None) == "M_FORBIDDEN", refused
    finally:
        await patient.close()
