"""Pair rooms against a real Synapse: settings, idempotence, strangers, intruders, emergencies,
roster reloads. Every wait is on an event or a server state, with a timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import yaml
from nio import RoomCreateResponse, RoomGetStateEventResponse, RoomGetStateResponse

from tests.integration.helpers import NioUser, Seen, lose_database, make_clinic, roster_for, running_bot

pytestmark = pytest.mark.integration

PATIENT_NAME = "Pat Test"


def reply_to(event_id: str) -> Callable[[Seen], bool]:
    return lambda s: s.content.get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == event_id


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 30.0, every: float = 0.3) -> Any:
    """Poll a server-side condition until it is truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(every)


async def synced(user: NioUser, rounds: int = 2) -> None:
    """Return after `rounds` complete syncs of `user` that started after this call."""
    for _ in range(rounds):
        async with user._changed:  # noqa: SLF001 - test helper
            await asyncio.wait_for(user._changed.wait(), 30)  # noqa: SLF001


async def state_map(user: NioUser, room_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    assert user.client is not None
    resp = await user.client.room_get_state(room_id)
    assert isinstance(resp, RoomGetStateResponse), resp
    return {(e["type"], e.get("state_key", "")): e.get("content", {}) for e in resp.events}


async def membership(user: NioUser, room_id: str, mxid: str) -> str | None:
    assert user.client is not None
    resp = await user.client.room_get_state_event(room_id, "m.room.member", mxid)
    if isinstance(resp, RoomGetStateEventResponse):
        return resp.content.get("membership")
    return None


async def ask_help(patient: NioUser, room_id: str, bot_mxid: str) -> Seen:
    n = len(patient.seen)
    asked = await patient.send(room_id, "!aide")
    reply = await patient.wait_for(lambda s: s.sender == bot_mxid and reply_to(asked)(s), after=n)
    assert reply.decrypted
    return reply


# 1 -----------------------------------------------------------------------------------------
async def test_pair_room_settings(homeserver, new_user, tmp_path):
    clinic = make_clinic(tmp_path, homeserver, new_user)
    patient = await clinic.user(clinic.patient, "patient").start()
    bot_mxid, dr, pat = clinic.bot[0], clinic.practitioner[0], clinic.patient[0]
    try:
        async with running_bot(clinic.config_path):
            room_id = await patient.wait_room()
            banner = await patient.wait_for(
                lambda s: s.room_id == room_id and s.content.get("carebot.disclaimer") is True
            )
            assert banner.decrypted and banner.sender == bot_mxid
            assert banner.content["msgtype"] == "m.notice"
            # The pin is put after the disclaimer is sent: wait for it on the server.
            state = await until(
                lambda: _with_pin(patient, room_id)
            )

            assert state[("m.room.encryption", "")]["algorithm"] == "m.megolm.v1.aes-sha2"
            assert state[("m.room.join_rules", "")]["join_rule"] == "invite"
            assert state[("m.room.guest_access", "")]["guest_access"] == "forbidden"
            assert state[("m.room.history_visibility", "")]["history_visibility"] in ("invited", "joined")
            assert state[("carebot.pair", "")] == {"patient": "pat-1", "practitioner": "dr-a"}
            assert state[("m.room.pinned_events", "")]["pinned"] == [banner.event_id]

            name = state.get(("m.room.name", ""), {}).get("name", "")
            topic = state.get(("m.room.topic", ""), {}).get("topic", "")
            for text in (name, topic):
                assert PATIENT_NAME.lower() not in text.lower()
            assert "15" in topic and "112" in topic

            pl = state[("m.room.power_levels", "")]
            users = pl.get("users", {})
            users_default = pl.get("users_default", 0)
            state_default = pl.get("state_default", 50)
            invite, kick, redact = pl.get("invite", 0), pl.get("kick", 50), pl.get("redact", 50)
            assert users.get(pat, users_default) == 0
            dr_level = users.get(dr, users_default)
            assert dr_level >= redact
            assert dr_level < min(invite, kick, state_default)
            assert pl.get("events", {}).get("carebot.pair", state_default) > dr_level
            # The bot alone holds power: in room v12+ as creator, otherwise through `users`.
            create = state[("m.room.create", "")]
            if int(create.get("room_version", "1")) < 12:
                assert users.get(bot_mxid, users_default) >= max(invite, kick, state_default)

            # And the server enforces it: the patient cannot invite anyone.
            assert patient.client is not None
            other = new_user("outsider")[0]
            resp = await patient.client.room_invite(room_id, other)
            assert getattr(resp, "status_code", None) == "M_FORBIDDEN", resp
    finally:
        await patient.close()


async def _with_pin(patient: NioUser, room_id: str) -> dict[tuple[str, str], dict[str, Any]] | None:
    state = await state_map(patient, room_id)
    return state if ("m.room.pinned_events", "") in state else None


# 2 -----------------------------------------------------------------------------------------
async def test_one_room_per_pair_across_restarts_and_database_loss(homeserver, new_user, tmp_path, store_url):
    clinic = make_clinic(tmp_path, homeserver, new_user, database=store_url)
    patient = await clinic.user(clinic.patient, "patient").start()
    bot_mxid = clinic.bot[0]
    try:
        async with running_bot(clinic.config_path) as bot:
            room_id = await patient.wait_room()
            await patient.wait_for(lambda s: s.room_id == room_id and s.content.get("carebot.disclaimer") is True)
            desk = await bot.store.desk("dr-a")  # the practitioner's desk and Space: never twice either
            assert desk is not None and desk.desk_room_id and desk.space_id
        all_rooms = {room_id, desk.desk_room_id, desk.space_id}

        for _ in range(2):
            async with running_bot(clinic.config_path) as bot:
                assert [r.room_id for r in await bot.store.rooms()] == [room_id]
                assert await bot.store.desk("dr-a") == desk
                assert set((await bot.client.joined_rooms()).rooms) == all_rooms
                # Positive control: the bot is up and past reconciliation, the patient has synced.
                await ask_help(patient, room_id, bot_mxid)
        assert set(patient.invites) == {room_id}
        assert set(patient.client.rooms) == {room_id}

        data = tmp_path / "data"
        assert (data / "session.json").exists() and (data / "crypto").is_dir()
        await lose_database(clinic.config_path)

        async with running_bot(clinic.config_path) as bot:
            rooms = await bot.store.rooms()
            assert [(r.room_id, r.patient_id, r.practitioner_id, r.state) for r in rooms] == [
                (room_id, "pat-1", "dr-a", "active")
            ]
            assert await bot.store.desk("dr-a") == desk  # found again from its state
            assert set((await bot.client.joined_rooms()).rooms) == all_rooms
            # Any new room would have been created before `ready`; the reply proves the patient
            # has synced past that point, and that the adopted room is served.
            reply = await ask_help(patient, room_id, bot_mxid)
            assert reply.room_id == room_id
        assert set(patient.invites) == {room_id}
        assert set(patient.client.rooms) == {room_id}
        assert not patient.client.invited_rooms
    finally:
        await patient.close()


# 3 -----------------------------------------------------------------------------------------
async def test_invalid_roster_reload_keeps_the_old_roster(homeserver, new_user, tmp_path):
    clinic = make_clinic(tmp_path, homeserver, new_user)
    patient = await clinic.user(clinic.patient, "patient").start()
    try:
        async with running_bot(clinic.config_path) as bot:
            room_id = await patient.wait_room()
            await ask_help(patient, room_id, clinic.bot[0])
            (tmp_path / "roster.yaml").write_text("practitioners: [\n  - id: dr-a\n patients: {{{\n")
            assert await bot.reload() is False
            reply = await ask_help(patient, room_id, clinic.bot[0])
            assert "!renouveler" in reply.content["body"]
            assert [r.state for r in await bot.store.rooms()] == ["active"]
    finally:
        await patient.close()


# 4 -----------------------------------------------------------------------------------------
async def test_stranger_invite_is_declined_and_stranger_gets_no_room(homeserver, new_user, tmp_path):
    clinic = make_clinic(tmp_path, homeserver, new_user)
    s_mxid, s_pw = new_user("stranger")
    stranger = await NioUser(s_mxid, s_pw, homeserver.url, tmp_path / "clients" / "stranger").start()
    patient = await clinic.user(clinic.patient, "patient").start()
    bot_mxid = clinic.bot[0]
    try:
        async with running_bot(clinic.config_path) as bot:
            pair_room = await patient.wait_room()  # positive control: the roster pair got its room
            assert stranger.client is not None
            resp = await stranger.client.room_create(name="hello doc", invite=[bot_mxid])
            assert isinstance(resp, RoomCreateResponse), resp
            room_id = resp.room_id

            async def declined() -> bool:
                return await membership(stranger, room_id, bot_mxid) == "leave"

            await until(declined)
            # The stranger was told once, then the bot left and forgot the room.
            await until(lambda: asyncio.sleep(0, room_id not in bot.client.rooms))
            assert [r.room_id for r in await bot.store.rooms()] == [pair_room]
            await synced(stranger)
            assert stranger.invites == []
            assert set(stranger.client.rooms) == {room_id}
    finally:
        await stranger.close()
        await patient.close()


# 5 -----------------------------------------------------------------------------------------
async def test_intruder_is_removed_and_practitioner_told(homeserver, new_user, tmp_path):
    """Only the bot can invite, so the intruder is let in with the bot's own credentials
    (standing for an admin mistake or a leaked token); the running bot must undo it."""
    clinic = make_clinic(tmp_path, homeserver, new_user)
    patient = await clinic.user(clinic.patient, "patient").start()
    practitioner = await clinic.user(clinic.practitioner, "dr").start()
    i_mxid, i_pw = new_user("intruder")
    intruder = await NioUser(i_mxid, i_pw, homeserver.url, tmp_path / "clients" / "intruder").start()
    try:
        async with running_bot(clinic.config_path) as bot:
            pair_room = (await bot.store.room_for_pair("pat-1", "dr-a")).room_id  # not the desk or Space
            room_id = await practitioner.wait_room(lambda r: r == pair_room)
            await practitioner.wait_for(lambda s: s.room_id == room_id and s.content.get("carebot.disclaimer") is True)
            n = len(practitioner.seen)
            resp = await bot.client.room_invite(room_id, i_mxid)
            assert getattr(resp, "status_code", None) is None, resp
            told = await practitioner.wait_for(
                lambda s: s.room_id == room_id
                and s.sender == clinic.bot[0]
                and i_mxid in s.content.get("body", ""),
                after=n,
            )
            assert told.decrypted and told.content["msgtype"] == "m.notice"
            assert clinic.practitioner[0] in told.content["m.mentions"]["user_ids"]

            async def removed() -> bool:
                return await membership(practitioner, room_id, i_mxid) in ("leave", "ban")

            await until(removed)
    finally:
        await intruder.close()
        await practitioner.close()
        await patient.close()


# 6 -----------------------------------------------------------------------------------------
async def test_emergency_gets_an_immediate_notice_mentioning_the_practitioner(homeserver, new_user, tmp_path):
    clinic = make_clinic(tmp_path, homeserver, new_user)
    patient = await clinic.user(clinic.patient, "patient").start()
    try:
        async with running_bot(clinic.config_path):
            room_id = await patient.wait_room()
            n = len(patient.seen)
            said = await patient.send(room_id, "j'ai une douleur thoracique depuis ce matin")
            alert = await patient.wait_for(
                lambda s: s.sender == clinic.bot[0] and s.content.get("carebot.emergency") is True, after=n
            )
            assert alert.decrypted and alert.room_id == room_id
            assert alert.content["msgtype"] == "m.notice"
            assert clinic.practitioner[0] in alert.content["m.mentions"]["user_ids"]
            assert "15" in alert.content["body"] and "112" in alert.content["body"]
            assert reply_to(said)(alert)
    finally:
        await patient.close()


# 7 -----------------------------------------------------------------------------------------
async def test_pair_removed_from_roster_closes_the_room(homeserver, new_user, tmp_path):
    clinic = make_clinic(tmp_path, homeserver, new_user)
    patient = await clinic.user(clinic.patient, "patient").start()
    bot_mxid = clinic.bot[0]
    try:
        async with running_bot(clinic.config_path) as bot:
            room_id = await patient.wait_room()
            started = time.monotonic()
            await ask_help(patient, room_id, bot_mxid)  # positive control, and its latency
            latency = time.monotonic() - started

            roster = roster_for(clinic.practitioner[0], clinic.patient[0])
            roster["patients"][0]["care"] = []
            clinic.write_roster(roster)
            n = len(patient.seen)
            assert await bot.reload() is True
            closed = await patient.wait_for(
                lambda s: s.room_id == room_id and s.sender == bot_mxid and "fermé" in s.content.get("body", ""),
                after=n,
            )
            assert closed.decrypted and closed.content["msgtype"] == "m.notice"
            assert [r.state for r in await bot.store.rooms()] == ["closed"]

            # Read-only now: the homeserver itself refuses what the patient writes there.
            assert patient.client is not None
            refused = await patient.client.room_send(
                room_id, "m.room.message", {"msgtype": "m.text", "body": "!aide"}, ignore_unverified_devices=True
            )
            assert getattr(refused, "status_code", None) == "M_FORBIDDEN", refused
            n = len(patient.seen)
            bound = max(5.0, 3 * latency)
            with pytest.raises(TimeoutError):
                await patient.wait_for(lambda s: s.sender == bot_mxid, after=n, timeout=bound)

            # Positive control after the fact: the pair back -> same room, answers again.
            clinic.write_roster(roster_for(clinic.practitioner[0], clinic.patient[0]))
            assert await bot.reload() is True
            await ask_help(patient, room_id, bot_mxid)
            assert [(r.room_id, r.state) for r in await bot.store.rooms()] == [(room_id, "active")]
            assert set(patient.invites) == {room_id}
    finally:
        await patient.close()


async def test_roster_patient_without_a_verified_pair_gets_a_polite_explanation_and_no_room(
    homeserver, new_user, tmp_path
):
    clinic = make_clinic(tmp_path, homeserver, new_user)
    other_doc = new_user("drNo")
    lonely = new_user("lonely")
    roster = yaml.safe_load((tmp_path / "roster.yaml").read_text())
    roster["practitioners"].append(
        {"id": "dr-no", "matrix_id": other_doc[0], "display_name": "Dr No Messaging", "messaging": False}
    )
    roster["patients"].append(
        {
            "id": "pat-2",
            "matrix_id": lonely[0],
            "display_name": "Lonely Patient",
            "care": [{"practitioner": "dr-no", "last_consultation": "2026-10-01", "treatments": []}],
        }
    )
    clinic.write_roster(roster)
    user = await clinic.user(lonely, "lonely").start()
    try:
        async with running_bot(clinic.config_path) as bot:
            assert await bot.store.room_for_pair("pat-2", "dr-no") is None
            created = await user.client.room_create(
                invite=[clinic.bot[0]],
                initial_state=[{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
            )
            room_id = created.room_id
            answer = await user.wait_for(lambda s: s.room_id == room_id and s.sender == clinic.bot[0])
            assert answer.decrypted and "réservé aux patients" in answer.content["body"]
            assert "15" in answer.content["body"]
            assert user.invites == []  # never invited to a pair room
            assert len(await bot.store.rooms()) == 1
    finally:
        await user.close()


async def test_a_pair_added_to_the_roster_file_gets_its_room_without_a_restart(homeserver, new_user, tmp_path):
    clinic = make_clinic(tmp_path, homeserver, new_user)
    newcomer = new_user("newcomer")
    user = await clinic.user(newcomer, "newcomer").start()
    try:
        async with running_bot(clinic.config_path) as bot:
            roster = yaml.safe_load((tmp_path / "roster.yaml").read_text())
            roster["patients"].append(
                {
                    "id": "pat-new",
                    "matrix_id": newcomer[0],
                    "display_name": "New Comer",
                    "care": [{"practitioner": "dr-a", "last_consultation": "2026-10-01", "treatments": []}],
                }
            )
            clinic.write_roster(roster)  # no reload call: the bot notices the file changed
            room_id = await user.wait_room(timeout=30)
            record = await bot.store.room(room_id)
            assert record is not None and (record.patient_id, record.practitioner_id) == ("pat-new", "dr-a")
            banner = await user.wait_for(lambda s: s.room_id == room_id and s.content.get("carebot.disclaimer") is True)
            assert banner.decrypted
    finally:
        await user.close()


async def test_a_patient_joining_after_the_practitioner_gets_the_banner_posted_and_pinned_again(
    homeserver, new_user, tmp_path
):
    clinic = make_clinic(tmp_path, homeserver, new_user)
    doc = await clinic.user(clinic.practitioner, "doc").start()
    patient = clinic.user(clinic.patient, "patient")
    patient.auto_join = False
    await patient.start()
    try:
        async with running_bot(clinic.config_path) as bot:
            pair_room = (await bot.store.room_for_pair("pat-1", "dr-a")).room_id  # not the desk or Space
            room_id = await doc.wait_room(lambda r: r == pair_room)
            first = await doc.wait_for(lambda s: s.content.get("carebot.disclaimer") is True)
            await patient.client.join(room_id)
            again = await patient.wait_for(
                lambda s: s.content.get("carebot.disclaimer") is True and s.event_id != first.event_id
            )
            assert again.decrypted and "3114" in again.content["body"]

            async def pinned_is_new() -> None:
                while True:
                    state = await bot.client.room_get_state_event(room_id, "m.room.pinned_events")
                    if getattr(state, "content", {}).get("pinned") == [again.event_id]:
                        return
                    await asyncio.sleep(0.2)

            await asyncio.wait_for(pinned_is_new(), 30)
    finally:
        await patient.close()
        await doc.close()


async def _until(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not in {timeout} s")
        await asyncio.sleep(0.1)


async def test_a_patient_who_leaves_is_invited_again_to_the_same_room_at_the_next_reconciliation(
    homeserver, new_user, tmp_path
):
    clinic = make_clinic(tmp_path, homeserver, new_user)
    patient = await clinic.user(clinic.patient, "patient").start()
    pat = clinic.patient[0]
    try:
        async with running_bot(clinic.config_path) as bot:
            room_id = await patient.wait_room()
            await patient.wait_for(lambda s: s.room_id == room_id and s.content.get("carebot.disclaimer") is True)
            await patient.client.room_leave(room_id)
            await _until(lambda: bot.store.needs_reinvite(room_id, pat), "the bot notes that the patient left")
            patient.invites.clear()
            await bot.reconcile()
            await _until(lambda: _true(room_id in patient.invites), "the patient is invited again")
            assert [r.room_id for r in await bot.store.rooms()] == [room_id]  # the same room, never a second
            assert await bot.store.pending_reinvites() == set()
    finally:
        await patient.close()


async def _true(value: bool) -> bool:
    return value
