"""Trust travels with the event: the verdict on a decrypted message's sending device, and the
gate that lets a state-changing command through only from a trusted one.

The nio client is a small stand-in holding real nio `OlmDevice` objects; the Megolm session
is looked up through the adapter (bot/matrix/nio_private.py), replaced here by a table. The
whole path runs against Synapse and Element-stack peers in tests/integration/test_trust_gate.py.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from nio import RoomMessageText
from nio.crypto import OlmDevice
from unit_helpers import make_setup

from bot.care.service import CareContext
from bot.config import load_config
from bot.matrix import nio_private
from bot.matrix.sender_trust import SenderTrustCheck
from bot.runtime.shared import LiveState
from bot.runtime.trust_gate import TrustGate, command_in
from bot.store import Store

ROOM = "!room:clinic.example"
ALICE = "@alice:clinic.example"
DOCTOR = "@dr.martin:clinic.example"


class FakeOlm:
    def __init__(self, devices: list[OlmDevice]) -> None:
        self.devices = devices
        self.blacklisted: set[str] = set()
        self.users_for_key_query: set[str] = set()
        self.device_store = SimpleNamespace(active_user_devices=lambda user: [d for d in self.devices if d.user_id == user])

    def is_device_blacklisted(self, device: OlmDevice) -> bool:
        return device.id in self.blacklisted


class FakeClient:
    def __init__(self, devices: list[OlmDevice]) -> None:
        self.olm = FakeOlm(devices)
        self.queried = 0

    async def keys_query(self) -> None:
        self.queried += 1


class FakeDevices:
    def __init__(self, mode: str, signed: set[str] = frozenset(), pending: str | None = None) -> None:
        self.mode = mode
        self._signed = set(signed)
        self.pins = SimpleNamespace(pending=self._pending)
        self._pending_key = pending

    async def _pending(self, user_id: str) -> str | None:
        return self._pending_key

    async def signed(self, users: list[str], fresh: bool = False) -> dict[str, set[str]]:
        return {u: self._signed for u in users}


def _device(device_id: str, user: str = DOCTOR, name: str = "") -> OlmDevice:
    return OlmDevice(user, device_id, {"ed25519": "ed-" + device_id, "curve25519": "cu-" + device_id}, display_name=name)


def _event(body: str, device_id: str = "PHONE", sender: str = DOCTOR, decrypted: bool = True) -> RoomMessageText:
    event = RoomMessageText.from_dict(
        {"type": "m.room.message", "event_id": "$" + body.replace(" ", "_"), "sender": sender, "origin_server_ts": 1,
         "content": {"msgtype": "m.text", "body": body}}
    )
    event.decrypted = decrypted
    event.sender_key = "cu-" + device_id
    event.session_id = "S-" + device_id
    return event


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, str], Any]:
    """(sender key, session id) -> a Megolm session as the adapter would return it."""
    table: dict[tuple[str, str], Any] = {}
    monkeypatch.setattr(nio_private, "inbound_session", lambda client, room, key, sid: table.get((key, sid)))
    monkeypatch.setattr(nio_private, "accept_forwards_from_session_owner", lambda client: None)
    return table


def _remembered(known: set[tuple[str, str, str]]) -> Any:
    async def remembered(room_id: str, sender_key: str, session_id: str) -> bool:
        return (room_id, sender_key, session_id) in known

    return remembered


def _session(device_id: str, chain: list[str] | None = None, ed25519: str | None = None) -> Any:
    return SimpleNamespace(sender_key="cu-" + device_id, ed25519=ed25519 or "ed-" + device_id, forwarding_chain=chain or [])


async def test_tofu_trusts_a_known_device_whose_session_came_from_it(sessions):
    sessions[("cu-PHONE", "S-PHONE")] = _session("PHONE")
    check = SenderTrustCheck(FakeClient([_device("PHONE", name="Pixel")]), FakeDevices("tofu"))  # type: ignore[arg-type]
    verdict = await check.of(_event("!accepter R1"), ROOM)
    assert (verdict.trusted, verdict.reason, verdict.device_label()) == (True, "known_device", "Pixel (PHONE)")


async def test_tofu_refuses_a_forwarded_session_a_mismatched_key_a_blacklisted_or_unknown_device(sessions):
    client = FakeClient([_device("PHONE")])
    check = SenderTrustCheck(client, FakeDevices("tofu"))  # type: ignore[arg-type]
    sessions[("cu-PHONE", "S-PHONE")] = _session("PHONE", chain=["cu-PHONE"])  # forwarded, by someone
    assert (await check.of(_event("!accepter R1"), ROOM)).reason == "forwarded"
    nio_private.per_client(client, "owner_forwards", set).add((ROOM, "cu-PHONE", "S-PHONE"))
    assert (await check.of(_event("!accepter R1"), ROOM)).trusted  # forwarded by the device itself, on request
    remembered = SenderTrustCheck(client, FakeDevices("tofu"), _remembered({(ROOM, "cu-PHONE", "S-OLD")}))  # type: ignore[arg-type]
    sessions[("cu-PHONE", "S-OLD")] = _session("PHONE", chain=["cu-PHONE"])
    old = _event("!accepter R1")
    old.session_id = "S-OLD"
    assert not (await check.of(old, ROOM)).trusted  # this run never saw it handed over...
    assert (await remembered.of(old, ROOM)).trusted  # ...an earlier one did, and the store says so
    sessions[("cu-PHONE", "S-PHONE")] = _session("PHONE", ed25519="ed-SOMEONE-ELSE")
    assert (await check.of(_event("!accepter R1"), ROOM)).reason == "keys_mismatch"
    sessions[("cu-PHONE", "S-PHONE")] = _session("PHONE")
    client.olm.blacklisted.add("PHONE")
    assert (await check.of(_event("!accepter R1"), ROOM)).reason == "blacklisted"
    sessions[("cu-GHOST", "S-GHOST")] = _session("GHOST")
    verdict = await check.of(_event("!accepter R1", device_id="GHOST"), ROOM)
    assert verdict.reason == "unknown_device" and client.queried == 1  # its keys were asked for first
    assert (await check.of(_event("!accepter R1", decrypted=False), ROOM)).reason == "not_encrypted"
    assert (await check.of(_event("!accepter R1", device_id="NOSESSION"), ROOM)).reason == "no_session"


async def test_cross_signed_mode_needs_the_pinned_identity_signature(sessions):
    sessions[("cu-PHONE", "S-PHONE")] = _session("PHONE")
    client = FakeClient([_device("PHONE")])
    assert (await SenderTrustCheck(client, FakeDevices("cross-signed", {"PHONE"})).of(_event("!accepter R1"), ROOM)).reason == "cross_signed"  # type: ignore[arg-type]
    verdict = await SenderTrustCheck(client, FakeDevices("cross-signed")).of(_event("!accepter R1"), ROOM)  # type: ignore[arg-type]
    assert (verdict.trusted, verdict.reason) == (False, "not_cross_signed")
    verdict = await SenderTrustCheck(client, FakeDevices("cross-signed", pending="NEWKEY")).of(_event("!accepter R1"), ROOM)  # type: ignore[arg-type]
    assert (verdict.trusted, verdict.reason) == (False, "identity_changed")


def test_a_reply_fallback_does_not_hide_a_command_from_the_gate():
    assert command_in("> <@bot:x> Demande R1 en attente\n\n!accepter R1", 1000).name == "approve"
    assert command_in("!refuser R1 pas maintenant", 1000).name == "deny"
    assert command_in("merci beaucoup", 1000) is None


# -- the gate ---------------------------------------------------------------------------------


async def _gate(tmp_path, verdict_for: dict[str, Any]) -> tuple[TrustGate, Store, Any, list[int]]:
    setup = make_setup(tmp_path)
    care = CareContext.load(load_config(setup.config))
    store = await Store.open(tmp_path / "db")
    woken: list[int] = []

    class Check:
        async def of(self, event: Any, room_id: str) -> Any:
            return verdict_for[event.sender]

    pair = care.roster.pair("pat-0001", "dr-martin")
    return TrustGate(store, LiveState(care=care), Check(), lambda: woken.append(1)), store, pair, woken  # type: ignore[arg-type]


async def test_an_untrusted_practitioner_device_cannot_approve_and_is_told_which_device(tmp_path):
    from bot.matrix.sender_trust import SenderTrust

    gate, store, pair, woken = await _gate(tmp_path, {DOCTOR: SenderTrust(False, "not_cross_signed", "LAPTOP", "Unknown laptop")})
    try:
        event = _event("!accepter R1 ok")
        assert await gate.refused(ROOM, pair, "practitioner", event) is True
        assert await store.is_processed(event.event_id) and woken == [1]
        (item,) = await store.outbox(limit=10)
        body = item.content["body"]
        assert "Unknown laptop (LAPTOP)" in body and "!accepter" in body and "Paramètres › Sessions" in body
        assert item.content["m.mentions"]["user_ids"] == [DOCTOR] and "carebot.renewal" not in item.content
        (row,) = [r for r in await store.audit_since(0) if r["action"] == "trust.command_refused"]
        assert row["actor"] == "dr-martin" and row["details"] == {"command": "approve", "device_id": "LAPTOP", "reason": "not_cross_signed"}
        # Read-only commands and plain messages are not the gate's business.
        assert await gate.refused(ROOM, pair, "practitioner", _event("!attente")) is False
        assert await gate.refused(ROOM, pair, "practitioner", _event("bonjour")) is False
    finally:
        await store.close()


async def test_an_untrusted_patient_device_gets_the_emergency_numbers_but_no_request(tmp_path):
    from bot.matrix.sender_trust import SenderTrust

    gate, store, pair, _ = await _gate(tmp_path, {ALICE: SenderTrust(False, "identity_changed", "TAB")})
    try:
        event = _event("!renouveler Levothyroxine, j'ai une douleur thoracique", sender=ALICE)
        assert await gate.refused(ROOM, pair, "patient", event) is True
        emergency, refusal = [i.content for i in await store.outbox(limit=10)]
        assert emergency["carebot.emergency"] is True and "15" in emergency["body"]
        assert "nouvelle identité" in refusal["body"] and "TAB" in refusal["body"]
        assert refusal["m.relates_to"]["m.in_reply_to"]["event_id"] == event.event_id
        assert await store.requests_in_room(ROOM) == []
    finally:
        await store.close()


async def test_a_trusted_device_passes_the_gate(tmp_path):
    from bot.matrix.sender_trust import SenderTrust

    gate, store, pair, woken = await _gate(tmp_path, {DOCTOR: SenderTrust(True, "cross_signed", "PHONE")})
    try:
        assert await gate.refused(ROOM, pair, "practitioner", _event("!accepter R1")) is False
        assert await store.outbox(limit=10) == [] and woken == []
    finally:
        await store.close()


async def test_a_device_that_cannot_be_checked_now_is_not_trusted_and_the_sender_is_asked_to_resend(tmp_path):
    setup = make_setup(tmp_path)
    care = CareContext.load(load_config(setup.config))
    store = await Store.open(tmp_path / "db")

    class Unreachable:
        async def of(self, event: Any, room_id: str) -> Any:
            raise ConnectionError("homeserver away")

    gate = TrustGate(store, LiveState(care=care), Unreachable(), lambda: None)  # type: ignore[arg-type]
    try:
        event = _event("!accepter R1")
        assert await gate.refused(ROOM, care.roster.pair("pat-0001", "dr-martin"), "practitioner", event) is True
        (item,) = await store.outbox(limit=10)
        assert "Envoyez-la à nouveau" in item.content["body"]
        (row,) = [r for r in await store.audit_since(0) if r["action"] == "trust.command_refused"]
        assert row["details"]["reason"] == "check_failed"
    finally:
        await store.close()


async def test_practitioner_notices_go_to_the_desk_when_there_is_one_else_to_the_pair_room(tmp_path):
    from bot.runtime.practitioner_notice import PractitionerNotices

    setup = make_setup(tmp_path)
    care = CareContext.load(load_config(setup.config))
    pair = care.roster.pair("pat-0001", "dr-martin")
    store = await Store.open(tmp_path / "db")
    posted: list[tuple[str, str]] = []
    has_desk = {"dr-martin": False}

    async def desk(practitioner: Any, text: str, txn: str) -> bool:
        if has_desk[practitioner.id]:
            posted.append((practitioner.id, text))
        return has_desk[practitioner.id]

    notices = PractitionerNotices(store, desk)
    try:
        async with store.transaction():
            await notices.notify(pair, ROOM, "first", "cause-1")
        (item,) = await store.outbox(limit=10)
        assert item.room_id == ROOM and item.content["m.mentions"]["user_ids"] == [DOCTOR] and posted == []
        has_desk["dr-martin"] = True
        async with store.transaction():
            await notices.notify(pair, ROOM, "second", "cause-2")
        assert posted == [("dr-martin", "second")] and len(await store.outbox(limit=10)) == 1
    finally:
        await store.close()
