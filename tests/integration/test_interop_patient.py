"""The patient's side, with Element's crypto stack (matrix-js-sdk + Rust crypto) against the real
bot and a real Synapse: answers in the command word's language, typo suggestions, and flood
control that never leaves a renewal request unanswered.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from bot.care.texts import Texts
from tests.integration.helpers import element_user, js_reply_to, make_clinic, running_bot, wait_js_event

pytestmark = [pytest.mark.integration, pytest.mark.interop]

TIMEOUT = 30.0
FLOOD_LIMIT = 3
TEXTS = Texts.default()


async def _ask(patient: Any, room_id: str, bot_id: str, body: str) -> dict[str, Any]:
    """The patient sends `body`; the bot's decrypted m.notice replying to it, as the patient sees it."""
    asked = await patient.send(room_id, body)
    reply = await wait_js_event(
        patient, room_id, lambda e: e["sender"] == bot_id and js_reply_to(e) == asked, f"bot reply to {body!r}"
    )
    assert reply["decrypted"] and "decryptionError" not in reply, reply
    assert reply["content"]["msgtype"] == "m.notice", reply
    return dict(reply["content"])


async def test_element_patient_gets_answers_in_the_command_language_and_no_request_is_lost_to_flood_control(
    homeserver, new_user, tmp_path
):
    clinic = make_clinic(tmp_path, homeserver, new_user, locale="fr")
    config = yaml.safe_load(clinic.config_path.read_text())
    config["limits"] = {"flood_messages_per_minute": FLOOD_LIMIT}
    clinic.config_path.write_text(yaml.safe_dump(config))
    bot_id = clinic.bot[0]
    patient = await element_user("patient", clinic.patient, homeserver.url)
    try:
        async with running_bot(clinic.config_path):
            room_id = await patient.wait_invite(timeout=TIMEOUT)
            await patient.join(room_id)

            # The command word decides the language, whatever the roster says (fr here).
            english = await _ask(patient, room_id, bot_id, "!help")
            assert english["body"].startswith(TEXTS.get("help_intro", "en")), english["body"]
            assert "!renew <medication>" in english["body"] and "pinned message" in english["body"]
            assert len(english["body"].splitlines()) <= 8
            french = await _ask(patient, room_id, bot_id, "!aide")
            assert french["body"].startswith(TEXTS.get("help_intro", "fr")), french["body"]
            assert len(french["body"].splitlines()) <= 8

            # A near miss gets a suggestion in the right language.
            typo = await _ask(patient, room_id, bot_id, "!renouvler Levothyrox 75")
            assert typo["body"] == TEXTS.get("did_you_mean", "fr", command="!renouveler"), typo["body"]
            assert "carebot.renewal" not in typo

            # The way patients write: a brand name, no unit. English word, English answer.
            pending = await _ask(patient, room_id, bot_id, "!renew Levothyrox 75")
            assert pending["carebot.renewal"] == {
                "id": "R1", "status": "pending", "medication": "Levothyroxine 75 µg", "rules": [],
            }
            assert pending["body"].startswith("Request R1 sent"), pending["body"]

            # Flood: help, typos and the first renewal did not count. Two more commands fill
            # the budget of three; the next one is told plainly to come back in a minute.
            for _ in range(FLOOD_LIMIT - 1):
                status = await _ask(patient, room_id, bot_id, "!statut")
                assert "R1" in status["body"]
            limited = await _ask(patient, room_id, bot_id, "!statut")
            assert limited["body"] == TEXTS.get("flood_limited", "fr"), limited["body"]
            # A renewal request past the limit is answered every time: not recorded, send again.
            for _ in range(2):
                refused = await _ask(patient, room_id, bot_id, "!renouveler Levothyroxine 25 µg")
                assert refused["body"] == TEXTS.get("flood_renewal", "fr"), refused["body"]
                assert "carebot.renewal" not in refused
            # Help is still answered.
            still = await _ask(patient, room_id, bot_id, "!help")
            assert still["body"].startswith(TEXTS.get("help_intro", "en"))
    finally:
        await patient.close()
