"""Logs carry ids and counts only: no message body, medication, display name or patient id."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from tests.integration.helpers import BotProcess, NioUser, make_clinic, replying_to

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]




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


def _put_raw(homeserver_url: str, token: str, room_id: str, content: dict) -> str:
    """An m.room.encrypted event sent as is (no client-side encryption)."""
    req = urllib.request.Request(
        f"{homeserver_url}/_matrix/client/v3/rooms/{room_id}/send/m.room.encrypted/{uuid.uuid4().hex}",
        data=json.dumps(content).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="PUT",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return str(json.load(r)["event_id"])


def _bot_login(clinic):
    """A second session of the bot's account, standing for an admin mistake or a leaked token
    (only the bot may invite into a pair room)."""
    from nio import AsyncClient

    return AsyncClient(clinic.homeserver, clinic.bot[0])


async def test_error_paths_leave_no_medical_or_personal_data_in_the_logs(homeserver, new_user, tmp_path):
    """A rejected roster reload, a rejected policy reload, a message nobody can decrypt and an
    intruder: each is logged (with file, line and key for the reloads), none with a patient's
    Matrix id, a name or a medication."""
    clinic = make_clinic(tmp_path, homeserver, new_user)
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    config = yaml.safe_load(clinic.config_path.read_text())
    config["policies"]["path"] = str(policies)
    config["limits"] = {"undecryptable_wait_s": 2}
    clinic.config_path.write_text(yaml.safe_dump(config))
    good_roster = (tmp_path / "roster.yaml").read_text()
    intruder_id, intruder_pw = new_user("intruder")
    intruder = await NioUser(intruder_id, intruder_pw, homeserver.url, tmp_path / "clients" / "intruder").start()
    patient = await clinic.user(clinic.patient, "patient").start()
    bot = await BotProcess(clinic.config_path).start()
    secrets_said = ["Levothyroxine", "levothyroxine", "Pat Test", "Dr Ana Test", clinic.patient[0], intruder_id]
    second = _bot_login(clinic)
    try:
        room_id = await patient.wait_room()
        await patient.wait_for(lambda s: s.content.get("carebot.disclaimer") is True)

        # 1. A roster whose new entry repeats the patient's Matrix id (and names a medication).
        roster = yaml.safe_load(good_roster)
        twin = dict(roster["patients"][0], id="pat-2", display_name="Pat Test")
        roster["patients"].append(twin)
        (tmp_path / "roster.yaml").write_text(yaml.safe_dump(roster, allow_unicode=True))
        bot.proc.send_signal(signal.SIGHUP)
        rejected = await _log_line(bot, lambda r: r.get("event") == "config.reload_rejected" and r.get("key") == "patients[1].matrix_id")
        assert rejected["file"].endswith("roster.yaml") and rejected["line"] and "check-config" in rejected["advice"]
        (tmp_path / "roster.yaml").write_text(good_roster)

        # 2. A policy file quoting a medication where a list is expected.
        (policies / "extra.yaml").write_text(
            "kind: rules\nrules:\n  - id: bad-rule\n    type: deny_list\n    terms: \"Levothyroxine 75 µg\"\n"
            "    reason:\n      fr: x\n      en: y\n", encoding="utf-8"
        )
        bot.proc.send_signal(signal.SIGHUP)
        await _log_line(bot, lambda r: r.get("event") == "config.reload_rejected" and r.get("key") == "rules[0].terms")
        (policies / "extra.yaml").unlink()

        # 3. A message the bot can never decrypt: the patient is asked to send it again.
        c = patient.client
        assert c is not None and c.olm is not None
        never = _put_raw(clinic.homeserver, c.access_token, room_id, {
            "algorithm": "m.megolm.v1.aes-sha2",
            "ciphertext": "AwgAEnACgAkLmt6qF84IK++J7UDH2Za1YVchHyprqTqsg2yyOwAtHaZTwyNg",
            "sender_key": c.olm.account.identity_keys["curve25519"],
            "session_id": "no-such-session-" + uuid.uuid4().hex,
            "device_id": c.device_id,
        })
        await patient.wait_for(replying_to(never))

        # 4. An intruder let in by the bot's own account (they join at once) is removed.
        login = await second.login(clinic.bot[1], device_name="admin-mistake")
        assert getattr(login, "access_token", None), login
        await second.room_invite(room_id, intruder_id)
        await _log_line(bot, lambda r: r.get("event") == "room.intruder_removed")
    finally:
        await second.close()
        await intruder.close()
        code = await bot.stop()
        await patient.close()
    assert code == 0
    events = set()
    for line in bot.lines:
        record = json.loads(line)  # every line, library messages included, is a JSON object
        events.add(record["event"])
        text = json.dumps(record, ensure_ascii=False)
        for secret in secrets_said:
            assert secret not in text, (secret, line)
    assert {"config.reload_rejected", "message.undecryptable", "room.intruder_removed"} <= events, events


async def _log_line(bot: BotProcess, pred, timeout: float = 30.0) -> dict:
    async def poll() -> dict:
        while True:
            for line in bot.lines:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if pred(record):
                    return record
            await asyncio.sleep(0.2)

    try:
        return await asyncio.wait_for(poll(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError("no such log line; last lines:\n" + "\n".join(bot.lines[-15:])) from None
