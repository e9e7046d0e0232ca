"""Logs carry ids and counts only: no message body, medication, display name or patient id."""

from __future__ import annotations

import json

import pytest

from tests.integration.helpers import BotProcess, make_clinic, replying_to

pytestmark = pytest.mark.integration




async def test_a_whole_conversation_leaves_no_medical_or_personal_data_in_the_logs(homeserver, new_user, tmp_path):
    clinic = make_clinic(tmp_path, homeserver, new_user)
    patient = await clinic.user(clinic.patient, "patient").start()
    doc = await clinic.user(clinic.practitioner, "doc").start()
    bot = await BotProcess(clinic.config_path).start()
    secrets_said = [
        "Levothyroxine",
        "levothyroxine",
        "Morphine",
        "douleur thoracique",
        "Pat Test",
        "Dr Ana Test",
        "fatiguée ces jours-ci",
        "Ordonnance prête",
        "examens sanguins",
        clinic.patient[0],
    ]
    try:
        room_id = await patient.wait_room()
        await doc.wait_room()
        await patient.wait_for(lambda s: s.content.get("carebot.disclaimer") is True)
        said = [
            await patient.send(room_id, "Bonjour docteur, je suis fatiguée ces jours-ci"),
            await patient.send(room_id, "!renouveler Levothyroxine 75 µg"),
            await patient.send(room_id, "!renouveler Morphine 10 mg"),
            await patient.send(room_id, "j'ai une douleur thoracique"),
        ]
        for event_id in said[1:]:
            await patient.wait_for(replying_to(event_id))
        decision = await doc.send(room_id, "!accepter R1 Ordonnance prête")
        await patient.wait_for(replying_to(decision))
        deny = await patient.send(room_id, "!renouveler Levothyroxine 75 µg")
        await patient.wait_for(replying_to(deny))
        ask = await doc.send(room_id, "!refuser R2 examens sanguins d'abord")  # R2: the refused morphine took no number
        await patient.wait_for(replying_to(ask))
    finally:
        code = await bot.stop()
        await patient.close()
        await doc.close()
    assert code == 0
    assert len(bot.lines) > 5
    for line in bot.lines:
        record = json.loads(line)  # JSON lines when not on a terminal
        assert "event" in record
        text = json.dumps(record, ensure_ascii=False)  # undo \u escapes before searching
        for secret in secrets_said:
            assert secret not in text, (secret, line)
