"""Several bot accounts sharing one PostgreSQL: each practitioner is served by exactly one bot,
and a second bot claiming a practitioner is refused at start with both bots named."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from bot.db.claims import ClaimConflict
from tests.integration.helpers import NioUser, replying_to, running_bot

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def roster(practitioners: list[tuple[str, str]], patients: list[tuple[str, str, str]]) -> dict:
    last = (dt.date.today() - dt.timedelta(days=30)).isoformat()
    return {
        "practitioners": [
            {"id": pid, "matrix_id": mxid, "display_name": f"Dr {pid}", "messaging": True} for pid, mxid in practitioners
        ],
        "patients": [
            {"id": pid, "matrix_id": mxid, "display_name": pid,
             "care": [{"practitioner": dr, "last_consultation": last,
                       "treatments": [{"name": "Levothyroxine 75 µg", "long_term": True}]}]}
            for pid, mxid, dr in patients
        ],
    }


def bot_config(tmp: Path, name: str, homeserver_url: str, account: tuple[str, str], database: str,
               practitioners: list[str]) -> Path:
    d = tmp / name
    d.mkdir()
    (d / "bot-password").write_text(account[1])
    config = {
        "homeserver": {"url": homeserver_url},
        "bot": {"user_id": account[0], "password_file": "bot-password", "practitioners": practitioners},
        "storage": {"path": "data", "database": database},
        "roster": {"path": str(tmp / "roster.yaml")},
        "policies": {"path": str(REPO / "policies")},
        "sync": {"timeout_ms": 2000},
    }
    path = d / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def test_two_bots_split_the_practitioners_and_a_third_claiming_one_is_refused(
    homeserver, new_user, tmp_path, pg_url
):
    bot_a, bot_b, bot_c = new_user("carebotA"), new_user("carebotB"), new_user("carebotC")
    dr_a, dr_b = new_user("drA"), new_user("drB")
    pat_a, pat_b = new_user("patA"), new_user("patB")
    (tmp_path / "roster.yaml").write_text(yaml.safe_dump(roster(
        [("dr-a", dr_a[0]), ("dr-b", dr_b[0])],
        [("pat-a", pat_a[0], "dr-a"), ("pat-b", pat_b[0], "dr-b")],
    ), allow_unicode=True))
    config_a = bot_config(tmp_path, "a", homeserver.url, bot_a, pg_url, ["dr-a"])
    config_b = bot_config(tmp_path, "b", homeserver.url, bot_b, pg_url, ["dr-b"])
    config_c = bot_config(tmp_path, "c", homeserver.url, bot_c, pg_url, ["dr-a"])
    patient_a = await NioUser(*pat_a, homeserver.url, tmp_path / "clients" / "pa").start()
    patient_b = await NioUser(*pat_b, homeserver.url, tmp_path / "clients" / "pb").start()
    try:
        async with running_bot(config_a) as a, running_bot(config_b) as b:
            assert [(r.patient_id, r.practitioner_id) for r in await a.store.rooms()] == [("pat-a", "dr-a")]
            assert [(r.patient_id, r.practitioner_id) for r in await b.store.rooms()] == [("pat-b", "dr-b")]
            room_a = await patient_a.wait_room()
            room_b = await patient_b.wait_room()
            for patient, room, bot in ((patient_a, room_a, bot_a), (patient_b, room_b, bot_b)):
                await patient.wait_for(lambda s, room=room: s.room_id == room and s.content.get("carebot.disclaimer") is True)
                asked = await patient.send(room, "!aide")
                reply = await patient.wait_for(replying_to(asked))
                assert reply.sender == bot[0]  # answered by the bot serving that practitioner
            with pytest.raises(ClaimConflict) as info:
                async with running_bot(config_c):
                    pass
            message = str(info.value)
            assert str(config_c) in message and "bot.practitioners" in message
            assert bot_c[0] in message and bot_a[0] in message and "'dr-a'" in message
        # Each patient was invited by one bot only: one room each, never a second.
        assert set(patient_a.invites) == {room_a} and set(patient_b.invites) == {room_b}
    finally:
        await patient_a.close()
        await patient_b.close()
