"""What the Space and the desk look like when created, and desk notices as Matrix contents."""

from __future__ import annotations

import json
from types import SimpleNamespace

from bot.desk.content import desk_content
from bot.desk.links import permalink
from bot.desk.rooms import DESK_STATE, SPACE_STATE, child_content, desk_body, space_body
from bot.desk.service import DeskPost

BOT, DOC = "@carebot:clinic.example", "@dr.martin:clinic.example"


def _state(body: dict, type_: str) -> dict | None:
    return next((e["content"] for e in body["initial_state"] if e["type"] == type_), None)


def test_space_is_a_private_space_only_the_bot_arranges() -> None:
    body = space_body(bot=BOT, practitioner_mxid=DOC, practitioner_id="dr-martin", name="Patients — Dr Claire Martin", topic="t", room_version="12")
    assert body["creation_content"]["type"] == "m.space"
    assert _state(body, SPACE_STATE) == {"practitioner": "dr-martin"}
    assert body["invite"] == [DOC] and _state(body, "m.room.join_rules") == {"join_rule": "invite"}
    levels = body["power_level_content_override"]
    assert levels["users"][DOC] == 0 and levels["events"]["m.space.child"] == 100 and levels["events_default"] == 100
    assert BOT not in levels["users"]  # room v12: the creator's power is implicit
    assert BOT in space_body(bot=BOT, practitioner_mxid=DOC, practitioner_id="dr-martin", name="n", topic="t", room_version="10")["power_level_content_override"]["users"]


def test_desk_is_encrypted_for_the_practitioner_and_names_no_patient() -> None:
    body = desk_body(bot=BOT, practitioner_mxid=DOC, practitioner_id="dr-martin", name="Bureau — Dr Claire Martin", topic="t", room_version="12")
    assert _state(body, "m.room.encryption") == {"algorithm": "m.megolm.v1.aes-sha2"}
    assert _state(body, DESK_STATE) == {"practitioner": "dr-martin"}
    assert body["invite"] == [DOC] and "type" not in body["creation_content"]
    assert body["power_level_content_override"]["events_default"] == 0  # the practitioner types commands


def test_space_child_content_and_removal() -> None:
    assert child_content("clinic.example") == {"via": ["clinic.example"]}
    assert child_content("clinic.example", order="0desk", suggested=True) == {"via": ["clinic.example"], "order": "0desk", "suggested": True}


def test_permalinks_are_percent_encoded_with_via() -> None:
    assert permalink("!abc:clinic.example:8448") == "https://matrix.to/#/%21abc%3Aclinic.example%3A8448?via=clinic.example%3A8448"
    assert permalink("!abc:x", "$ev/1") == "https://matrix.to/#/%21abc%3Ax/%24ev%2F1?via=x"
    # Room version 12: no server in the room id, the bot's server is given.
    assert permalink("!Q1w2e3", via="clinic.example") == "https://matrix.to/#/%21Q1w2e3?via=clinic.example"
    assert permalink("!Q1w2e3") == "https://matrix.to/#/%21Q1w2e3"


def test_desk_notice_carries_the_request_the_patient_id_and_a_clickable_link() -> None:
    request = SimpleNamespace(id=7, status="pending", medication="Levothyroxine 75 µg", rules=(), patient_id="pat-0001")
    link = permalink("!alice:x", "$e")
    doc = SimpleNamespace(matrix_id=DOC, display_name="Dr Claire Martin")
    content = desk_content(DeskPost(f"New request R7 — Alice <Dupont>\nRoom: {link}", request=request, link=link), doc, mention=True)
    assert content["msgtype"] == "m.notice" and content["body"].startswith("New request R7")
    assert content["carebot.renewal"] == {"id": "R7", "status": "pending", "medication": "Levothyroxine 75 µg", "rules": []}
    assert content["carebot.patient"] == {"id": "pat-0001"}
    assert f'<a href="{link}">' in content["formatted_body"] and "&lt;Dupont&gt;" in content["formatted_body"]
    assert content["m.mentions"] == {"user_ids": [DOC]}
    plain = desk_content(DeskPost("x"), doc)
    assert "carebot.renewal" not in plain and plain["m.mentions"] == {"user_ids": []}
    json.dumps(content)


def test_a_desk_alert_is_a_mentioning_text_so_that_default_push_rules_ring_for_it() -> None:
    # .m.rule.suppress_notices (an override rule before .m.rule.is_user_mention) silences every
    # m.notice, mention or not: an emergency alert must be m.text to notify the practitioner.
    doc = SimpleNamespace(matrix_id=DOC, display_name="Dr Claire Martin")
    link = permalink("!alice:x", "$e")
    alert = desk_content(DeskPost(f"⚠️ Alice Dupont: a message may signal an emergency. {link}", link=link, alert=True), doc)
    assert alert["msgtype"] == "m.text" and alert["m.mentions"] == {"user_ids": [DOC]}
    assert f'<a href="{link}">' in alert["formatted_body"]
    assert desk_content(DeskPost("New request R7"), doc, mention=True)["msgtype"] == "m.notice"
