"""A message the bot cannot decrypt is never dropped silently: it waits for the key, then asks."""

from __future__ import annotations

import json
import urllib.request
import uuid

import pytest
import yaml

from nio.api import Api
from tests.integration.helpers import make_clinic, replying_to, running_bot

pytestmark = pytest.mark.integration




def _put_raw(homeserver_url: str, token: str, room_id: str, content: dict) -> str:
    req = urllib.request.Request(
        f"{homeserver_url}/_matrix/client/v3/rooms/{room_id}/send/m.room.encrypted/{uuid.uuid4().hex}",
        data=json.dumps(content).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="PUT",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return str(json.load(r)["event_id"])


async def test_late_key_is_used_and_a_key_that_never_comes_gets_a_resend_request(homeserver, new_user, tmp_path):
    clinic = make_clinic(tmp_path, homeserver, new_user)
    config = yaml.safe_load(clinic.config_path.read_text())
    config["limits"] = {"undecryptable_wait_s": 3}
    clinic.config_path.write_text(yaml.safe_dump(config))
    patient = await clinic.user(clinic.patient, "patient").start()
    try:
        async with running_bot(clinic.config_path):
            room_id = await patient.wait_room()
            await patient.wait_for(lambda s: s.content.get("carebot.disclaimer") is True)
            c = patient.client
            assert c is not None and c.olm is not None

            # 1. A command encrypted with a session whose key the bot gets only afterwards.
            users = [clinic.bot[0], clinic.patient[0]]
            missing = c.olm.get_missing_sessions(users)
            if missing:
                await c.keys_claim(missing)
            c.olm.create_outbound_group_session(room_id)
            key_messages = list(c.olm.share_group_session_parallel(room_id, users, ignore_unverified_devices=True))
            c.olm.outbound_group_sessions[room_id].shared = True
            encrypted = c.olm.group_encrypt(
                room_id, {"type": "m.room.message", "room_id": room_id, "content": {"msgtype": "m.text", "body": "!statut"}}
            )
            late = _put_raw(clinic.homeserver, c.access_token, room_id, encrypted)
            for _, to_device in key_messages:
                method, path, data = Api.to_device(c.access_token, "m.room.encrypted", to_device, uuid.uuid4())
                await c.send(method, path, data, headers={"Content-Type": "application/json"})
            answer = await patient.wait_for(replying_to(late))
            assert "Vous n'avez pas de demande" in answer.content["body"]

            # 2. Garbage no key will ever open: after the wait, the sender is asked to resend.
            never = _put_raw(
                clinic.homeserver,
                c.access_token,
                room_id,
                {
                    "algorithm": "m.megolm.v1.aes-sha2",
                    "ciphertext": "AwgAEnACgAkLmt6qF84IK++J7UDH2Za1YVchHyprqTqsg2yyOwAtHaZTwyNg",
                    "sender_key": c.olm.account.identity_keys["curve25519"],
                    "session_id": "no-such-session-" + uuid.uuid4().hex,
                    "device_id": c.device_id,
                },
            )
            resend = await patient.wait_for(replying_to(never))
            assert "envoyer à nouveau" in resend.content["body"]
    finally:
        await patient.close()
