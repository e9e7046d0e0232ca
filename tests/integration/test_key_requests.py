"""A missing room key is asked of the SENDER's devices, and the sender's answer is used.

The sender is an Element-stack client (matrix-js-sdk + Rust crypto). It never pushes a key on
its own a second time: Rust crypto answers an `m.room_key_request` from another user's device
only for a session it had already shared with that very device (it re-sends the key, as an
`m.forwarded_room_key`). That is the realistic case this covers: the bot had the key and lost
it (a to-device message lost, a store restored from an older backup). Here the bot's copy of
the patient's session is dropped from its memory; the patient's next message, encrypted with
that same session, can only be read if the bot asks the patient's device. nio's own
`request_room_key` asks only the bot's own devices, and nio asks a sender by itself only when
its Olm session with that device is less than an hour old (its "unwedging" rule): the test
ages the bot's Olm session, as in a room that has been running for a while. With nio's request,
or with no request at all, this test fails (checked: the patient gets "I could not decrypt your
last message" instead of an answer). Two first messages are answered before the loss, so any
key the sender pushes on its own has arrived by then.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml

from bot.matrix import nio_private
from tests.integration.helpers import element_user, js_reply_to, make_clinic, running_bot, wait_js_event

pytestmark = [pytest.mark.integration, pytest.mark.interop]

TIMEOUT = 45.0


async def _until(check, what: str, timeout: float = TIMEOUT):  # type: ignore[no-untyped-def]
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"{what}: not true in {timeout}s")


async def test_a_lost_room_key_is_asked_of_the_senders_device_and_the_message_counts(homeserver, new_user, tmp_path):
    clinic = make_clinic(tmp_path, homeserver, new_user)
    config = yaml.safe_load(clinic.config_path.read_text())
    config["limits"] = {"undecryptable_wait_s": 25}
    config["trust"] = "cross-signed"
    clinic.config_path.write_text(yaml.safe_dump(config))
    bot_id = clinic.bot[0]
    patient = await element_user("patient", clinic.patient, homeserver.url)
    try:
        async with running_bot(clinic.config_path) as bot:
            room_id = await patient.wait_invite(timeout=TIMEOUT)
            await patient.join(room_id)
            for _ in range(2):  # the sender's key sharing for this session is done
                first = await patient.send(room_id, "!aide")
                await wait_js_event(
                    patient, room_id, lambda e: e["sender"] == bot_id and js_reply_to(e) == first and bool(e.get("decrypted")),
                    "the answer to a first message", TIMEOUT,
                )
            own = await patient.call("whoami")
            devices = await patient.user_devices(clinic.patient[0])
            curve = devices[own["deviceId"]]["keys"][f"curve25519:{own['deviceId']}"]

            # The bot loses its copy of the patient's Megolm session(s) in this room.
            olm = bot.client.olm
            lost = dict(olm.inbound_group_store[room_id][curve])
            assert lost, "the bot never had the patient's session"
            olm.inbound_group_store[room_id][curve].clear()
            # nio asks the sender by itself only while its Olm session with the sending device
            # is younger than an hour (its "unwedging" rule); make it the usual, older one.
            for olm_session in olm.session_store[curve]:
                olm_session.creation_time -= timedelta(hours=2)

            # The next message uses the same session: only the patient's device can give it back.
            asked = await patient.send(room_id, "!renouveler Levothyroxine 75 µg")
            answer = await wait_js_event(
                patient, room_id, lambda e: e["sender"] == bot_id and js_reply_to(e) == asked and bool(e.get("decrypted")),
                "the answer to the message whose key was lost", TIMEOUT,
            )
            renewal = answer["content"].get("carebot.renewal") or {}
            assert renewal.get("status") == "pending", answer["content"].get("body")
            regained = olm.inbound_group_store.get(room_id, curve, next(iter(lost)))
            assert regained is not None and regained.forwarding_chain, "the key came back forwarded"
            # forwarded by the session's own device, so the command counted (cross-signed mode)
            assert nio_private.forwarded_by_owner(bot.client, room_id, curve, regained.id)
            await _until(lambda: bot.store.is_owner_forwarded(room_id, curve, regained.id), "remembered in the store")

        # After a restart the session is still first-hand: a command in it still counts.
        async with running_bot(clinic.config_path):
            asked = await patient.send(room_id, "!annuler R1")
            answer = await wait_js_event(
                patient, room_id, lambda e: e["sender"] == bot_id and js_reply_to(e) == asked and bool(e.get("decrypted")),
                "the answer after a restart", TIMEOUT,
            )
            assert (answer["content"].get("carebot.renewal") or {}).get("status") == "cancelled", answer["content"].get("body")
    finally:
        await patient.close()
