"""carebot opposite Element's crypto stack (matrix-js-sdk + Rust crypto), in "exclude insecure
devices" mode (MSC4153, OnlySignedDevicesIsolationMode) on both human sides.

A patient and a practitioner, each a cross-signed js peer that only talks to cross-signed
devices, are invited by the real bot; the patient decrypts the pinned disclaimer, sees the bot's
device as signed by its owner, and runs the whole renewal flow with the practitioner. The bot
answering proves it decrypts js messages; the js peers reading its answers prove the reverse.
"""

from __future__ import annotations

import asyncio
import json
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import (
    SENDER_TRUST_FAILURES,
    element_user,
    js_reply_to,
    js_timeline_summary,
    make_clinic,
    running_bot,
    wait_js_event,
)

pytestmark = [pytest.mark.integration, pytest.mark.interop]


TIMEOUT = 30.0










async def _command(sender: Any, reader: Any, room_id: str, bot_id: str, body: str, msgtype: str = "m.notice") -> dict:
    """`sender` sends a command; wait for the bot's decrypted reply to it as seen by `reader`
    (an m.notice, but the practitioner's decision: an m.text, so that the patient is notified)."""
    asked = await sender.send(room_id, body)
    reply = await wait_js_event(
        reader,
        room_id,
        lambda e: e["sender"] == bot_id and js_reply_to(e) == asked,
        f"bot reply to {body!r} ({asked})",
    )
    assert reply["encrypted"] and reply["decrypted"], js_timeline_summary([reply])
    assert "decryptionError" not in reply, reply
    assert reply["content"]["msgtype"] == msgtype, reply
    return reply


@contextlib.asynccontextmanager
async def _pair_room(tmp_path: Path, homeserver: Any, new_user: Any) -> AsyncIterator[tuple[Any, Any, Any, str, str]]:
    """Cross-signed, only-signed js patient and practitioner, the real bot, both joined to the
    pair room the bot created: yields (bot, patient, practitioner, room_id, bot_user_id)."""
    clinic = make_clinic(tmp_path, homeserver, new_user)
    patient = await element_user("patient", clinic.patient, homeserver.url)
    try:
        practitioner = await element_user("practitioner", clinic.practitioner, homeserver.url)
        try:
            async with running_bot(clinic.config_path) as bot:
                room_id = await patient.wait_invite(timeout=TIMEOUT)
                # (the practitioner is also invited to their desk and Space, in no set order)
                assert (await practitioner.wait_invite(timeout=TIMEOUT, room_id=room_id)) == room_id
                await patient.join(room_id)
                await practitioner.join(room_id)
                yield bot, patient, practitioner, room_id, clinic.bot[0]
        finally:
            await practitioner.close()
    finally:
        await patient.close()


def _bot_crypto_view(bot: Any, room_id: str, users: list[str]) -> str:
    """The bot's nio view of the pair's devices and of its outbound session (failure evidence)."""
    olm = bot.client.olm
    devices = {
        u: {
            d.id: {
                "verified": olm.is_device_verified(d),
                "blacklisted": olm.is_device_blacklisted(d),
                "ignored": olm.is_device_ignored(d),
                "has_olm_session": bool(olm.session_store.get(d.curve25519)),
            }
            for d in olm.device_store.active_user_devices(u)
        }
        for u in users
    }
    session = olm.outbound_group_sessions.get(room_id)
    shared = None
    if session is not None:
        shared = {
            "id": session.id,
            "shared_with": sorted(map(list, session.users_shared_with)),
            "ignored": sorted(map(list, session.users_ignored)),
        }
    return json.dumps({"devices": devices, "outbound": shared}, indent=1)


async def _wait_event_or_dump(peer: Any, room_id: str, pred: Callable[[dict], bool], what: str, bot: Any, users: list[str]) -> dict:
    try:
        return await wait_js_event(peer, room_id, pred, what)
    except AssertionError as e:
        raise AssertionError(f"{e}\nbot crypto view:\n{_bot_crypto_view(bot, room_id, users)}") from None


def _renewal(status: str, bot_id: str) -> Callable[[dict], bool]:
    return lambda e: (
        e["sender"] == bot_id
        and bool(e.get("decrypted"))
        and ((e.get("content") or {}).get("carebot.renewal") or {}).get("status") == status
    )


async def _pinned(peer, room_id: str, timeout: float = 30.0) -> dict:
    """The pinned-events state, once the bot has pinned its disclaimer (after the first join)."""

    async def poll() -> dict:
        while True:
            try:
                pinned = await peer.state(room_id, "m.room.pinned_events")
            except Exception:  # noqa: BLE001 - not there yet: the peer reports M_NOT_FOUND
                pinned = None
            if pinned and pinned.get("pinned"):
                return pinned
            await asyncio.sleep(0.2)

    return await asyncio.wait_for(poll(), timeout)


async def test_element_patient_and_practitioner_in_only_signed_mode_run_the_renewal_flow(
    homeserver, new_user, tmp_path
):
    async with _pair_room(tmp_path, homeserver, new_user) as (bot, patient, practitioner, room_id, bot_id):
        # The bot's device is cross-signed by the bot: only-signed mode accepts it.
        trust = await patient.device_trust(bot_id, bot.client.device_id)
        assert trust["known"] and trust["signedByOwner"], trust

        # State (unencrypted): encryption, the pair ids (no names), the pinned disclaimer id.
        assert (await patient.state(room_id, "m.room.encryption"))["algorithm"] == "m.megolm.v1.aes-sha2"
        assert await patient.state(room_id, "carebot.pair") == {"patient": "pat-1", "practitioner": "dr-a"}
        pinned = await _pinned(patient, room_id)
        assert len(pinned["pinned"]) == 1, pinned
        first = await wait_js_event(
            patient, room_id, lambda e: e["eventId"] == pinned["pinned"][0], "pinned event in the timeline"
        )
        assert first["sender"] == bot_id and first["encrypted"], first
        # (whether it *decrypts* for a cold Element client: see the disclaimer test below)

        # Renewal: pending -> approved with the practitioner's note. Every answer is a decrypted
        # m.notice replying to the js command: the bot decrypted js, js decrypted the bot.
        pending = await _command(patient, patient, room_id, bot_id, "!renouveler Levothyroxine 75 µg")
        renewal = pending["content"]["carebot.renewal"]
        assert renewal["status"] == "pending" and renewal["rules"] == [], renewal
        request_id = renewal["id"]
        assert request_id == "R1", renewal
        users = [patient.user_id, practitioner.user_id]
        await _wait_event_or_dump(
            practitioner, room_id, _renewal("pending", bot_id), "pending renewal notice", bot, users
        )

        await _command(practitioner, practitioner, room_id, bot_id, f"!accepter {request_id} Ordonnance prête", "m.text")
        approved = await wait_js_event(patient, room_id, _renewal("approved", bot_id), "approved renewal")
        assert approved["content"]["carebot.renewal"]["id"] == request_id, approved
        assert "Ordonnance prête" in approved["content"]["body"], approved["content"]["body"]

        # Ineligible medication: the reply names the policy rules.
        refused = await _command(patient, patient, room_id, bot_id, "!renouveler morphine")
        renewal = refused["content"]["carebot.renewal"]
        assert renewal["status"] == "ineligible" and renewal["rules"], renewal

        # Deny with a reason the patient reads; cancel; status lists them all.
        r3 = (await _command(patient, patient, room_id, bot_id, "!renouveler Levothyroxine 75 µg"))["content"]["carebot.renewal"]
        denied = await _command(practitioner, patient, room_id, bot_id, f"!refuser {r3['id']} Prise de sang d'abord", "m.text")
        assert denied["content"]["carebot.renewal"]["status"] == "denied", denied
        first, rest = denied["content"]["body"].split("\n", 1)
        assert first == f"Votre praticien a répondu à votre demande {r3['id']} : non acceptée.", first
        assert "Prise de sang" in rest and "Levothyroxine" in rest, rest
        # Element's default push rules notify the patient of the decision (not of a notice).
        push = {e["eventId"]: e for e in (await patient.call("pushDetails", roomId=room_id))["events"]}
        assert push[denied["eventId"]]["notify"], push[denied["eventId"]]
        assert not push[pending["eventId"]]["notify"], push[pending["eventId"]]
        r4 = (await _command(patient, patient, room_id, bot_id, "!renew levothyroxine 75ug"))["content"]["carebot.renewal"]
        cancelled = await _command(patient, patient, room_id, bot_id, f"!annuler {r4['id']}")
        assert cancelled["content"]["carebot.renewal"]["status"] == "cancelled", cancelled
        status = await _command(patient, patient, room_id, bot_id, "!statut")
        assert all(rid in status["content"]["body"] for rid in ("R1", "R2", r3["id"], r4["id"])), status

        # An emergency gets the numbers at once and mentions the practitioner.
        await patient.send(room_id, "j'ai une douleur thoracique depuis ce matin")
        alert = await wait_js_event(
            practitioner, room_id, lambda e: e["sender"] == bot_id and e["content"].get("carebot.emergency") is True,
            "emergency notice",
        )
        assert practitioner.user_id in alert["content"]["m.mentions"]["user_ids"], alert
        assert "15" in alert["content"]["body"] and "112" in alert["content"]["body"]


async def test_element_patient_in_only_signed_mode_decrypts_the_pinned_disclaimer(homeserver, new_user, tmp_path):
    async with _pair_room(tmp_path, homeserver, new_user) as (_bot, patient, _practitioner, room_id, bot_id):
        pinned = await _pinned(patient, room_id)
        disclaimer = await wait_js_event(
            patient,
            room_id,
            lambda e: e["eventId"] == pinned["pinned"][0] and "decryptionError" not in e and bool(e.get("decrypted")),
            "decrypted pinned disclaimer",
            after_reload=True,
        )
        assert disclaimer["sender"] == bot_id and disclaimer["encrypted"], disclaimer
        content = disclaimer["content"]
        assert content.get("carebot.disclaimer") is True and content["msgtype"] == "m.notice", content
        assert all(n in content["body"] for n in ("15", "112", "114", "3114")), content["body"]


async def test_a_patient_whose_client_learns_the_bot_late_is_refused_the_banner_only_for_the_sender_then_reads_it(
    homeserver, new_user, tmp_path
):
    """Element's race (README, "A banner read too early"): the patient's /keys/query answer comes
    3 s late, after the banner. Element may then refuse the banner for an unknown sender device,
    never for a missing key (the bot shared it with the patient's device before sending), and it
    reads once decrypted again, as a restarted client does."""
    clinic = make_clinic(tmp_path, homeserver, new_user)
    patient = await element_user("patient", clinic.patient, homeserver.url, env={"PEER_DELAY_KEYS_QUERY_MS": "3000"})
    try:
        async with running_bot(clinic.config_path):
            bot_id = clinic.bot[0]
            room_id = await patient.wait_invite(timeout=TIMEOUT)
            await patient.join(room_id)
            banner_id = (await _pinned(patient, room_id))["pinned"][0]
            first = await wait_js_event(patient, room_id, lambda e: e["eventId"] == banner_id, "the banner, as first read")
            assert first["sender"] == bot_id and first["encrypted"], first
            assert first["decrypted"] or first.get("decryptionError") in SENDER_TRUST_FAILURES, js_timeline_summary([first])
            banner = await wait_js_event(
                patient, room_id, lambda e: e["eventId"] == banner_id and bool(e.get("decrypted")), "the banner, read",
                after_reload=True,
            )
            assert banner["content"].get("carebot.disclaimer") is True, banner["content"]
            assert all(n in banner["content"]["body"] for n in ("15", "112", "114", "3114")), banner["content"]["body"]
    finally:
        await patient.close()
