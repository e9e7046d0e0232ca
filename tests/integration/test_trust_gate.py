"""Device trust and identity pinning against a real Synapse and Element's crypto stack
(matrix-js-sdk + Rust crypto), with `trust: cross-signed`.

* A second, UNSIGNED device of the practitioner types `!accepter R1`: nothing changes, the
  practitioner is told which device and what to do, the refusal is audited; the same command
  from the cross-signed device approves the request.
* The patient resets their identity (a new master key): the bot notices it without waiting for
  a message, audits it, tells the practitioner, stops trusting the patient's devices (their
  `!renouveler` is refused, their device gets no key) until the clinic admin runs
  `carebot trust accept`; then the patient's requests count again and they read the answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.helpers import element_user, js_reply_to, make_clinic, running_bot, wait_js_event

pytestmark = [pytest.mark.integration, pytest.mark.interop]

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 45.0


def _cross_signed(config_path: Path) -> None:
    data = yaml.safe_load(config_path.read_text())
    data["trust"] = "cross-signed"
    config_path.write_text(yaml.safe_dump(data))


async def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "bot.cli", *args], cwd=str(REPO),
        capture_output=True, text=True, timeout=60, env={**os.environ},
    )


async def _until(check: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.3)
    raise AssertionError(f"{what} not true in {timeout}s (last: {last!r})")


async def _audit(bot: Any, action: str) -> list[dict]:
    return [row for row in await bot.store.audit_since(0) if row["action"] == action]


async def _join_desk(bot: Any, practitioner: Any) -> str:
    """The practitioner's desk, joined: what is for the practitioner alone goes there."""
    desk = (await bot.store.desk("dr-a")).desk_room_id
    await practitioner.wait_invite(timeout=TIMEOUT, room_id=desk)
    await practitioner.join(desk)
    return desk


@dataclass
class ElementPair:
    """A clinic whose patient and practitioner use Element's stack, both in their pair room."""

    clinic: Any
    bot: Any
    patient: Any
    practitioner: Any
    room_id: str


@contextlib.asynccontextmanager
async def _element_pair(homeserver: Any, new_user: Any, tmp_path: Path, *, cross_signed: bool) -> AsyncIterator[ElementPair]:
    clinic = make_clinic(tmp_path, homeserver, new_user)  # trust: tofu (the default) unless cross_signed
    if cross_signed:
        _cross_signed(clinic.config_path)
    patient = await element_user("patient", clinic.patient, homeserver.url)
    practitioner = await element_user("practitioner", clinic.practitioner, homeserver.url)
    try:
        async with running_bot(clinic.config_path) as bot:
            room_id = await patient.wait_invite(timeout=TIMEOUT)
            assert await practitioner.wait_invite(timeout=TIMEOUT, room_id=room_id) == room_id
            await patient.join(room_id)
            await practitioner.join(room_id)
            yield ElementPair(clinic, bot, patient, practitioner, room_id)
    finally:
        await practitioner.close()
        await patient.close()


def _from_bot(bot_id: str, pred: Callable[[dict], bool]) -> Callable[[dict], bool]:
    return lambda e: e["sender"] == bot_id and bool(e.get("decrypted")) and "decryptionError" not in e and pred(e)


def _status(status: str) -> Callable[[dict], bool]:
    return lambda e: ((e.get("content") or {}).get("carebot.renewal") or {}).get("status") == status


async def test_an_unsigned_device_of_the_practitioner_cannot_approve_but_the_signed_one_can(
    homeserver, new_user, tmp_path
):
    from tests.interop.peer import JsPeer

    stolen = await JsPeer.start("practitioner-unsigned")
    try:
        async with _element_pair(homeserver, new_user, tmp_path, cross_signed=True) as s:
            clinic, bot, patient, practitioner, room_id = s.clinic, s.bot, s.patient, s.practitioner, s.room_id
            bot_id = clinic.bot[0]
            asked = await patient.send(room_id, "!renouveler Levothyroxine 75 µg")
            pending = await wait_js_event(
                patient, room_id, _from_bot(bot_id, lambda e: js_reply_to(e) == asked), "pending reply", TIMEOUT
            )
            assert pending["content"]["carebot.renewal"]["status"] == "pending", pending

            # A fresh login of the practitioner's account (a stolen password): not cross-signed.
            await stolen.login(homeserver.url, *clinic.practitioner, device_name="Unknown laptop")
            unsigned = await _until(
                lambda: _known(practitioner, clinic.practitioner[0], stolen.device_id), "the new device listed"
            )
            assert not unsigned["signedByOwner"], unsigned
            await _until(lambda: _in_room(stolen, room_id), "the unsigned device sees the room")
            desk = await _join_desk(bot, practitioner)
            await stolen.send(room_id, "!accepter R1 ok")

            refusal = await wait_js_event(  # in the practitioner's desk: for them alone
                practitioner, desk,
                _from_bot(bot_id, lambda e: stolen.device_id in str(e["content"].get("body", ""))),
                "the refusal naming the unsigned device", TIMEOUT,
            )
            body = refusal["content"]["body"]
            assert "!accepter" in body and "n'a pas été prise en compte" in body, body
            assert "Unknown laptop" in body, body  # the device's display name, as the owner sees it
            assert clinic.practitioner[0] in refusal["content"]["m.mentions"]["user_ids"], refusal
            assert "carebot.renewal" not in refusal["content"], refusal
            request = await bot.store.request(1)
            assert request.status == "pending", request
            refused = await _audit(bot, "trust.command_refused")
            assert len(refused) == 1 and refused[0]["actor"] == "dr-a", refused
            details = refused[0]["details"]
            assert details == {"command": "approve", "device_id": stolen.device_id, "reason": "not_cross_signed"}, details

            # The practitioner's cross-signed device approves.
            await practitioner.send(room_id, "!accepter R1 Ordonnance prête")
            approved = await wait_js_event(patient, room_id, _from_bot(bot_id, _status("approved")), "approval", TIMEOUT)
            assert approved["content"]["carebot.renewal"]["id"] == "R1"
            assert (await bot.store.request(1)).status == "approved"
    finally:
        await stolen.close()


async def _known(peer: Any, user_id: str, device_id: str) -> dict | None:
    trust = await peer.device_trust(user_id, device_id)
    return trust if trust.get("known") else None


async def _in_room(peer: Any, room_id: str) -> bool:
    try:
        return await peer.state(room_id, "m.room.encryption") is not None
    except Exception:  # noqa: BLE001 - not synced yet
        return False


async def test_an_identity_reset_of_the_patient_is_reported_and_withheld_until_the_admin_accepts_it(
    homeserver, new_user, tmp_path
):
    async with _element_pair(homeserver, new_user, tmp_path, cross_signed=True) as s:
        clinic, bot, patient, practitioner, room_id = s.clinic, s.bot, s.patient, s.practitioner, s.room_id
        cfg = str(clinic.config_path)
        bot_id, patient_id = clinic.bot[0], clinic.patient[0]
        desk = await _join_desk(bot, practitioner)
        await wait_js_event(patient, room_id, _from_bot(bot_id, lambda e: e["content"].get("carebot.disclaimer") is True), "banner", TIMEOUT,
                            after_reload=True)

        # The first master key seen is pinned.
        pins = await _until(lambda: _pins(bot, patient_id), "the patient's identity pinned")
        first = pins.master_key
        assert pins.new_master_key is None

        # Identity reset, as Element's "Reset your identity".
        reset = await patient.reset_cross_signing(clinic.patient[1])
        assert reset["masterKey"] != reset["before"], reset
        changed = await _until(lambda: _audit(bot, "identity.changed"), "the reset audited")
        assert changed[0]["actor"] == "pat-1" and changed[0]["details"]["new"] == reset["masterKey"], changed
        assert changed[0]["details"]["pinned"] == first, changed
        told = await wait_js_event(  # in the practitioner's desk: for them alone
            practitioner, desk,
            _from_bot(bot_id, lambda e: "Pat Test" in str(e["content"].get("body", "")) and "identité" in str(e["content"].get("body", ""))),
            "the practitioner told of the reset", TIMEOUT,
        )
        assert clinic.practitioner[0] in told["content"]["m.mentions"]["user_ids"], told
        await wait_js_event(  # the patient's notice is in their room (readable by trusted devices)
            practitioner, room_id, _from_bot(bot_id, lambda e: e["content"].get("carebot.identity_changed") is True),
            "the patient's notice", TIMEOUT,
        )
        listing = await _cli("trust", "list", "--config", cfg)
        assert listing.returncode == 0, listing.stderr
        assert "CHANGED" in listing.stdout and reset["masterKey"] in listing.stdout and first in listing.stdout, listing.stdout

        # The new identity signs nothing for the bot: the patient's request does not count.
        asked = await patient.send(room_id, "!renouveler Levothyroxine 75 µg")
        refusal = await wait_js_event(
            practitioner, room_id, _from_bot(bot_id, lambda e: js_reply_to(e) == asked), "the refusal", TIMEOUT
        )
        assert "nouvelle identité" in refusal["content"]["body"], refusal["content"]["body"]
        assert await bot.store.requests_in_room(room_id) == []
        mine = await wait_js_event(patient, room_id, lambda e: e["eventId"] == refusal["eventId"], "the refusal, for the patient")
        assert not mine.get("decrypted"), mine  # keys withheld from the new identity

        # The admin accepts the new identity (after a phone call): the patient counts again.
        accepted = await _cli("trust", "accept", patient_id, "--config", cfg)
        assert accepted.returncode == 0, accepted.stderr
        assert reset["masterKey"] in accepted.stdout
        assert (await _audit(bot, "identity.accepted"))[0]["actor"] == "admin"
        asked = await patient.send(room_id, "!renouveler Levothyroxine 75 µg")
        pending = await wait_js_event(
            patient, room_id, _from_bot(bot_id, lambda e: js_reply_to(e) == asked), "the patient reads the answer", TIMEOUT
        )
        assert pending["content"]["carebot.renewal"]["status"] == "pending", pending
        again = await clinic_cli_accept_again(cfg, patient_id)
        assert again.returncode == 1 and "no identity change waiting" in again.stderr, again.stderr


async def clinic_cli_accept_again(cfg: str, user_id: str) -> subprocess.CompletedProcess[str]:
    return await _cli("trust", "accept", user_id, "--config", cfg)


async def _pins(bot: Any, user_id: str) -> Any:
    return (await bot.store.identity_pins([user_id])).get(user_id)


async def test_in_tofu_mode_a_patient_who_resets_their_identity_reads_the_notice_and_keeps_counting(
    homeserver, new_user, tmp_path
):
    async with _element_pair(homeserver, new_user, tmp_path, cross_signed=False) as s:  # trust: tofu (the default)
        clinic, bot, patient, practitioner, room_id = s.clinic, s.bot, s.patient, s.practitioner, s.room_id
        bot_id, patient_id = clinic.bot[0], clinic.patient[0]
        desk = await _join_desk(bot, practitioner)
        await _until(lambda: _pins(bot, patient_id), "the patient's identity pinned")

        reset = await patient.reset_cross_signing(clinic.patient[1])
        notice = await wait_js_event(
            patient, room_id, _from_bot(bot_id, lambda e: e["content"].get("carebot.identity_changed") is True),
            "the patient reads the notice about their identity", TIMEOUT,
        )
        assert "Si ce n'est pas vous" in notice["content"]["body"], notice["content"]["body"]
        told = await wait_js_event(  # in the practitioner's desk: for them alone
            practitioner, desk,
            _from_bot(bot_id, lambda e: "Pat Test" in str(e["content"].get("body", "")) and "identité" in str(e["content"].get("body", ""))),
            "the practitioner told of the reset", TIMEOUT,
        )
        assert "carebot trust accept" not in told["content"]["body"]
        changed = await _audit(bot, "identity.changed")
        assert changed[0]["details"]["new"] == reset["masterKey"] and changed[0]["details"]["withheld"] is False

        asked = await patient.send(room_id, "!renouveler Levothyroxine 75 µg")
        pending = await wait_js_event(
            patient, room_id, _from_bot(bot_id, lambda e: js_reply_to(e) == asked), "the answer", TIMEOUT
        )
        assert pending["content"]["carebot.renewal"]["status"] == "pending", pending


def _put_plaintext(homeserver_url: str, token: str, room_id: str, content: dict) -> str:
    import json
    import urllib.request
    import uuid

    req = urllib.request.Request(
        f"{homeserver_url}/_matrix/client/v3/rooms/{room_id}/send/m.room.message/{uuid.uuid4().hex}",
        data=json.dumps(content).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="PUT",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return str(json.load(r)["event_id"])


async def test_a_plaintext_command_in_the_encrypted_room_changes_nothing(homeserver, new_user, tmp_path):
    """What a malicious homeserver (or a client that skips encryption) could inject under the
    practitioner's name: the homeserver's `sender` alone never approves anything."""
    from tests.integration.helpers import replying_to

    clinic = make_clinic(tmp_path, homeserver, new_user)  # tofu: the nio clients are trusted as first seen
    bot_id = clinic.bot[0]
    patient = await clinic.user(clinic.patient, "patient").start()
    practitioner = await clinic.user(clinic.practitioner, "practitioner").start()
    try:
        async with running_bot(clinic.config_path) as bot:
            room_id = await patient.wait_room()
            await practitioner.wait_room(lambda r: r == room_id)
            asked = await patient.send(room_id, "!renouveler Levothyroxine 75 µg")
            pending = await patient.wait_for(replying_to(asked), timeout=TIMEOUT)
            assert pending.content["carebot.renewal"]["status"] == "pending", pending.content
            assert practitioner.client is not None
            await asyncio.to_thread(
                _put_plaintext, homeserver.url, practitioner.client.access_token, room_id,
                {"msgtype": "m.text", "body": "!accepter R1"},
            )
            told = await practitioner.wait_for(
                lambda s: s.sender == bot_id and s.decrypted and "chiffrée" in str(s.content.get("body", "")),
                timeout=TIMEOUT,
            )
            assert clinic.practitioner[0] in told.content["m.mentions"]["user_ids"], told.content
            assert (await bot.store.request(1)).status == "pending"
            refused = await _audit(bot, "trust.command_refused")
            assert [r["details"]["reason"] for r in refused] == ["not_encrypted"], refused
            # The same command, encrypted by the practitioner's own device, counts.
            await practitioner.send(room_id, "!accepter R1")
            await patient.wait_for(
                lambda s: s.sender == bot_id and (s.content.get("carebot.renewal") or {}).get("status") == "approved",
                timeout=TIMEOUT,
            )
    finally:
        await practitioner.close()
        await patient.close()
