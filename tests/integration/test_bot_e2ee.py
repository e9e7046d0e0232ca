"""The bot talks to a real patient client through a real Synapse, encrypted, across restarts."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.integration.helpers import make_clinic, running_bot

pytestmark = pytest.mark.integration


def _devices(homeserver_url: str, token: str) -> list[str]:
    req = urllib.request.Request(
        homeserver_url + "/_matrix/client/v3/devices", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return [d["device_id"] for d in json.load(r)["devices"]]


async def test_patient_gets_encrypted_room_banner_and_help_and_bot_keeps_its_device_across_restarts(
    homeserver, new_user, tmp_path
):
    clinic = make_clinic(tmp_path, homeserver, new_user)
    patient = await clinic.user(clinic.patient, "patient").start()
    try:
        async with running_bot(clinic.config_path) as bot:
            device_before = bot.client.device_id
            room_id = await patient.wait_room()
            banner = await patient.wait_for(
                lambda s: s.room_id == room_id and s.content.get("carebot.disclaimer") is True
            )
            assert banner.decrypted and banner.content["msgtype"] == "m.notice"
            assert "15" in banner.content["body"] and "3114" in banner.content["body"]
            n = len(patient.seen)
            asked = await patient.send(room_id, "!aide")
            help_reply = await patient.wait_for(
                lambda s: s.sender == clinic.bot[0]
                and s.content.get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == asked,
                after=n,
            )
            assert help_reply.decrypted and "!renouveler" in help_reply.content["body"]
            token = bot.client.access_token
            devices_before = _devices(homeserver.url, token)
            assert device_before in devices_before

        # Sent while the bot is down: answered after the restart, by the same device.
        n = len(patient.seen)
        while_down = await patient.send(room_id, "!statut")
        async with running_bot(clinic.config_path) as bot:
            assert bot.client.device_id == device_before
            reply = await patient.wait_for(
                lambda s: s.content.get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == while_down,
                after=n,
            )
            assert reply.decrypted
            n = len(patient.seen)
            after_restart = await patient.send(room_id, "!help")
            await patient.wait_for(
                lambda s: s.content.get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == after_restart,
                after=n,
            )
            assert _devices(homeserver.url, token) == devices_before  # no new device
            rooms = await bot.store.rooms()
            assert len(rooms) == 1
    finally:
        await patient.close()
