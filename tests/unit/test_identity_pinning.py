"""Identity pinning: the store table (schema v3), the pins component, the cross-signing check
against the PINNED master key, and `carebot trust list | accept`."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from crypto_vectors import USER
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from unit_helpers import make_setup

from bot.care.service import CareContext
from bot.config import load_config
from bot.matrix import trust as trust_module
from bot.matrix.crypto.cross_signing_key import CrossSigningKeys
from bot.matrix.crypto.encoding import b64encode
from bot.matrix.crypto.signature import sign_json
from bot.matrix.trust import CROSS_SIGNED, DeviceTrust
from bot.runtime.identities import IdentityPins
from bot.runtime.shared import TO, LiveState
from bot.store import Store
from bot.trust_cli import main_trust

ALICE = "@alice:clinic.example"  # patient pat-0001 of dr-martin (verified pair) in unit_helpers
DOCTOR = "@dr.martin:clinic.example"


# -- store ------------------------------------------------------------------------------------


async def test_the_first_master_key_is_pinned_and_a_change_waits_for_acceptance(tmp_path):
    store = await Store.open(tmp_path / "db")
    try:
        assert await store.pin_identity(ALICE, "K1") is True
        assert await store.pin_identity(ALICE, "K2") is False  # first sighting wins
        await store.note_identity_change(ALICE, "K2")
        pin = (await store.identity_pins([ALICE]))[ALICE]
        assert (pin.master_key, pin.new_master_key) == ("K1", "K2") and pin.changed_at is not None
        before = await store.accept_identity(ALICE)
        assert before is not None and before.new_master_key == "K2"
        pin = (await store.identity_pins())[ALICE]
        assert (pin.master_key, pin.new_master_key) == ("K2", None)
        assert await store.accept_identity(ALICE) is None  # nothing waiting any more
    finally:
        await store.close()


# -- the pins component -------------------------------------------------------------------------


async def _pins(tmp_path, trust_mode: str = CROSS_SIGNED, two_patients: bool = False) -> tuple[IdentityPins, Store, list[int]]:
    setup = make_setup(tmp_path)
    if two_patients:  # Bob gets a consultation on record: dr-martin has two verified pairs
        setup.roster.write_text(setup.roster.read_text().replace("last_consultation: null", "last_consultation: 2026-03-01"))
    config = load_config(setup.config)
    care = CareContext.load(config)
    store = await Store.open(tmp_path / "db")
    async with store.transaction():
        await store.save_room("!room:clinic.example", "pat-0001", "dr-martin")
    woken: list[int] = []
    return IdentityPins(store, LiveState(care=care), trust_mode, lambda: woken.append(1)), store, woken


async def _audit(store: Store, action: str) -> list[dict[str, Any]]:
    return [r for r in await store.audit_since(0) if r["action"] == action]


async def test_pins_are_read_once_per_burst_and_an_accept_by_the_admin_is_seen_within_seconds(tmp_path):
    """The pins are read before every key share: one database read serves a burst of replies,
    a pin this process writes counts at once, and `carebot trust accept` (another process,
    straight into the database) counts within PINS_FRESH_S."""
    from bot.runtime import identities

    pins, store, _ = await _pins(tmp_path)
    now = [1000.0]
    pins._clock = lambda: now[0]  # a controllable clock
    reads: list[int] = []
    read = store.identity_pins

    async def counting(user_ids=None):
        reads.append(1)
        return await read(user_ids)

    store.identity_pins = counting  # type: ignore[method-assign]
    try:
        assert await pins.pinned([ALICE]) == {}
        await pins.observe({ALICE: "K1"})
        assert await pins.pinned([ALICE]) == {ALICE: "K1"}  # its own write: at once
        reads.clear()
        for _ in range(5):
            assert await pins.pinned([ALICE, DOCTOR]) == {ALICE: "K1"}
        assert len(reads) == 1  # DOCTOR once; ALICE fresh from the read after the write
        await pins.observe({ALICE: "K2"})  # an identity reset, waiting for the admin
        assert await pins.pinned([ALICE]) == {ALICE: "K1"}
        await store.accept_identity(ALICE)  # `carebot trust accept`, from another process
        assert await pins.pinned([ALICE]) == {ALICE: "K1"}  # not yet seen
        now[0] += identities.PINS_FRESH_S + 0.1
        assert await pins.pinned([ALICE]) == {ALICE: "K2"}
    finally:
        await store.close()


async def test_the_members_whose_identity_is_pinned_follow_a_roster_reload(tmp_path):
    """Worked out once per care context (asked at every device-list change), yet a reload that
    adds or drops a pair changes them at once."""
    pins, store, _ = await _pins(tmp_path)
    try:
        assert pins.members() == {ALICE, DOCTOR}
        state = pins._state
        with_bob = make_setup(tmp_path / "reloaded")
        with_bob.roster.write_text(with_bob.roster.read_text().replace("last_consultation: null", "last_consultation: 2026-03-01"))
        state.care = CareContext.load(load_config(with_bob.config))
        assert pins.members() == {ALICE, DOCTOR, "@bob:clinic.example"}
        state.care = CareContext.load(load_config(make_setup(tmp_path / "again").config))
        assert pins.members() == {ALICE, DOCTOR}
    finally:
        await store.close()


async def test_a_reset_is_audited_once_and_told_to_the_practitioner_and_the_patient(tmp_path):
    pins, store, woken = await _pins(tmp_path)
    try:
        await pins.observe({ALICE: "K1", DOCTOR: "D1", "@stranger:clinic.example": "S1"})
        assert await pins.pinned([ALICE, DOCTOR, "@stranger:clinic.example"]) == {ALICE: "K1", DOCTOR: "D1"}
        assert [r["actor"] for r in await _audit(store, "identity.pinned")] == ["pat-0001", "dr-martin"]
        assert await store.outbox(limit=10) == [] and woken == []

        await pins.observe({ALICE: "K2"})
        await pins.observe({ALICE: "K2"})  # seen again: told once
        assert await pins.pinned([ALICE]) == {ALICE: "K1"}  # still the pinned one
        assert await pins.pending(ALICE) == "K2"
        changed = await _audit(store, "identity.changed")
        assert len(changed) == 1 and changed[0]["actor"] == "pat-0001"
        assert changed[0]["details"] == {"pinned": "K1", "new": "K2", "withheld": True}
        sent = [item.content for item in await store.outbox(limit=10)]
        assert len(sent) == 2 and woken == [1]
        patient_notice, practitioner_notice = sent
        assert patient_notice["carebot.identity_changed"] is True
        assert "confirmation par le cabinet" in patient_notice["body"]
        assert patient_notice[TO] == [ALICE, DOCTOR]
        assert "Alice Dupont" in practitioner_notice["body"] and "carebot trust accept" in practitioner_notice["body"]
        assert practitioner_notice["m.mentions"]["user_ids"] == [DOCTOR]

        await pins.observe({ALICE: "K1"})  # back to the pinned identity: nothing waits any more
        assert await pins.pending(ALICE) is None
        assert len(await _audit(store, "identity.restored")) == 1
    finally:
        await store.close()


async def test_in_tofu_mode_the_reset_is_told_without_withholding(tmp_path):
    pins, store, _ = await _pins(tmp_path, trust_mode="tofu")
    try:
        await pins.observe({ALICE: "K1"})
        await pins.observe({ALICE: "K2"})
        patient_notice, practitioner_notice = [i.content for i in await store.outbox(limit=10)]
        assert "confirmation" not in patient_notice["body"] and "Si ce n'est pas vous" in patient_notice["body"]
        assert "carebot trust accept" not in practitioner_notice["body"]
        assert (await _audit(store, "identity.changed"))[0]["details"]["withheld"] is False
    finally:
        await store.close()


# -- cross-signing against the pinned key --------------------------------------------------------


def _device(keys: CrossSigningKeys, device_id: str) -> dict:
    dk = Ed25519PrivateKey.generate()
    obj = {
        "user_id": keys.user_id, "device_id": device_id,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {f"ed25519:{device_id}": b64encode(dk.public_key().public_bytes_raw()), f"curve25519:{device_id}": b64encode(b"c" * 32)},
    }
    obj = sign_json(obj, dk, keys.user_id, f"ed25519:{device_id}")
    return sign_json(obj, keys.private("self_signing"), keys.user_id, f"ed25519:{keys.self_signing_public}")


def _query(keys: CrossSigningKeys, device_id: str) -> dict:
    return {
        "device_keys": {keys.user_id: {device_id: _device(keys, device_id)}},
        "master_keys": {keys.user_id: keys.key_object("master")},
        "self_signing_keys": {keys.user_id: keys.key_object("self_signing")},
    }


class MemoryPins:
    def __init__(self) -> None:
        self.pins: dict[str, str] = {}
        self.new: dict[str, str] = {}

    async def pinned(self, user_ids: list[str], fresh: bool = False) -> dict[str, str]:
        return {u: self.pins[u] for u in user_ids if u in self.pins}

    async def observe(self, master_keys: dict[str, str | None]) -> None:
        for user, key in master_keys.items():
            if key is None:
                continue
            if user not in self.pins:
                self.pins[user] = key
            elif key != self.pins[user]:
                self.new[user] = key

    async def pending(self, user_id: str) -> str | None:
        return self.new.get(user_id)


async def test_devices_of_a_new_identity_are_not_cross_signed_until_it_is_accepted(monkeypatch):
    first, reset = CrossSigningKeys.generate(USER), CrossSigningKeys.generate(USER)
    served = {"query": _query(first, "PHONE")}
    asked: list[list[str]] = []

    async def query_keys(client: Any, users: Any) -> dict:
        asked.append(list(users))
        return served["query"]

    monkeypatch.setattr(trust_module, "query_keys", query_keys)
    pins = MemoryPins()
    devices = DeviceTrust(SimpleNamespace(), CROSS_SIGNED, pins)  # type: ignore[arg-type]
    assert await devices.signed([USER]) == {USER: {"PHONE"}}
    assert pins.pins == {USER: first.master_public}
    assert await devices.signed([USER]) == {USER: {"PHONE"}} and len(asked) == 1  # cached

    served["query"] = _query(reset, "NEWPHONE")  # identity reset: a new master key signs the device
    devices.invalidate([USER])
    assert await devices.signed([USER]) == {USER: set()}
    assert pins.new == {USER: reset.master_public}

    pins.pins[USER] = reset.master_public  # the admin accepts: the cache follows the pin
    assert await devices.signed([USER]) == {USER: {"NEWPHONE"}}


class StalePins(MemoryPins):
    """Pins read a few seconds ago (`stale`) until asked for a fresh read."""

    def __init__(self) -> None:
        super().__init__()
        self.stale: dict[str, str] = {}
        self.fresh_reads = 0

    async def pinned(self, user_ids: list[str], fresh: bool = False) -> dict[str, str]:
        if fresh:
            self.fresh_reads += 1
            self.stale = dict(self.pins)
        return {u: self.stale[u] for u in user_ids if u in self.stale}


async def test_a_device_is_refused_its_key_only_after_a_fresh_read_of_the_pins(monkeypatch):
    """`carebot trust accept` writes the pin from another process: the bot's pins of a few
    seconds ago still name the old key, and the new phone would be refused the room key."""
    first, reset = CrossSigningKeys.generate(USER), CrossSigningKeys.generate(USER)

    async def query_keys(client: Any, users: Any) -> dict:
        return _query(reset, "NEWPHONE")

    monkeypatch.setattr(trust_module, "query_keys", query_keys)
    pins = StalePins()
    pins.pins = {USER: first.master_public}
    pins.stale = dict(pins.pins)
    store = SimpleNamespace(active_user_devices=lambda user: [SimpleNamespace(id="NEWPHONE")] if user == USER else [])
    devices = DeviceTrust(SimpleNamespace(device_store=store), CROSS_SIGNED, pins)  # type: ignore[arg-type]
    assert await devices.unsigned_devices([USER]) == {USER: ["NEWPHONE"]}  # not accepted: refused
    assert pins.fresh_reads == 1
    pins.pins[USER] = reset.master_public  # the admin accepts (the bot's read is now stale)
    assert await devices.unsigned_devices([USER]) == {}
    assert pins.fresh_reads == 2
    assert await devices.unsigned_devices([USER]) == {} and pins.fresh_reads == 2  # all signed: no read


async def test_watch_rereads_the_identities_of_members_whose_devices_changed(monkeypatch):
    import asyncio

    keys = CrossSigningKeys.generate(USER)
    asked: list[list[str]] = []

    async def query_keys(client: Any, users: Any) -> dict:
        asked.append(sorted(users))
        return _query(keys, "PHONE")

    monkeypatch.setattr(trust_module, "query_keys", query_keys)
    pins = MemoryPins()
    devices = DeviceTrust(SimpleNamespace(), CROSS_SIGNED, pins)  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(devices.watch(stop, lambda: {USER}))

    async def until(n: int) -> None:
        while len(asked) < n:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(until(1), 5)  # every member at start: pinned without a message
    assert asked == [[USER]] and pins.pins == {USER: keys.master_public}
    devices.invalidate(["@stranger:example.org", USER])
    await asyncio.wait_for(until(2), 5)
    assert asked[1] == [USER]  # strangers are not looked up
    stop.set()
    await asyncio.wait_for(task, 5)


# -- carebot trust ------------------------------------------------------------------------------


async def test_trust_list_and_accept(tmp_path):
    import asyncio

    setup = make_setup(tmp_path)
    config = load_config(setup.config)
    db = Path(config.storage.path) / "carebot.db"  # relative paths are resolved from the config's directory
    args = SimpleNamespace(config=setup.config, trust_command="list")
    out, err = io.StringIO(), io.StringIO()
    assert await asyncio.to_thread(main_trust, args, out, err) == 1
    assert "no database" in err.getvalue() and "storage.path" in err.getvalue()

    store = await Store.open(db)
    async with store.transaction():
        await store.pin_identity(ALICE, "K1")
        await store.pin_identity(DOCTOR, "D1")
        await store.note_identity_change(ALICE, "K2")
    await store.close()
    out = io.StringIO()
    assert await asyncio.to_thread(main_trust, args, out, io.StringIO()) == 0
    listing = out.getvalue()
    assert f"{ALICE} (pat-0001): CHANGED" in listing and "K2" in listing and f"carebot trust accept {ALICE}" in listing
    assert f"{DOCTOR} (dr-martin): pinned D1" in listing and "2 pinned identities, 1 waiting" in listing

    accept = SimpleNamespace(config=setup.config, trust_command="accept", matrix_id=ALICE)
    out = io.StringIO()
    assert await asyncio.to_thread(main_trust, accept, out, io.StringIO()) == 0
    assert "K2 accepted (was K1)" in out.getvalue()
    err = io.StringIO()
    assert await asyncio.to_thread(main_trust, accept, io.StringIO(), err) == 1
    assert "no identity change waiting" in err.getvalue() and "carebot trust list" in err.getvalue()
    store = await Store.open(db)
    try:
        assert (await store.identity_pins([ALICE]))[ALICE].master_key == "K2"
        accepted = [r for r in await store.audit_since(0) if r["action"] == "identity.accepted"]
        assert accepted and accepted[0]["actor"] == "admin" and accepted[0]["subject"] == "pat-0001"
    finally:
        await store.close()


@pytest.mark.parametrize("argv", [["trust", "list", "--config", "c.yaml"], ["trust", "accept", "@a:b", "--config", "c.yaml"]])
def test_trust_commands_are_wired_in_the_cli(argv):
    from bot.cli import build_parser

    args = build_parser().parse_args(argv)
    assert args.trust_command == argv[1] and callable(args.func)


async def test_a_practitioners_own_reset_is_told_to_them_once_not_per_patient(tmp_path):
    pins, store, _ = await _pins(tmp_path, two_patients=True)
    assert len(pins._state.care.roster.verified_pairs_for_mxid(DOCTOR)) == 2  # noqa: SLF001
    async with store.transaction():
        await store.save_room("!room2:clinic.example", "pat-0002", "dr-martin")
    try:
        await pins.observe({DOCTOR: "D1"})
        await pins.observe({DOCTOR: "D2"})
        (item,) = [i.content for i in await store.outbox(limit=10)]
        assert item["body"].startswith("Dr Claire Martin: Votre identité de sécurité Matrix a changé")
        assert "carebot.identity_changed" not in item and item["m.mentions"]["user_ids"] == [DOCTOR]
    finally:
        await store.close()


async def test_sessions_handed_back_by_their_own_device_are_remembered(tmp_path):
    store = await Store.open(tmp_path / "db")
    try:
        assert not await store.is_owner_forwarded("!r", "cu", "S1")
        async with store.transaction():
            await store.remember_owner_forwarded([("!r", "cu", "S1"), ("!r", "cu", "S1")])
        assert await store.is_owner_forwarded("!r", "cu", "S1")
        assert not await store.is_owner_forwarded("!r", "cu", "S2")
    finally:
        await store.close()
