"""A stranger (not in the roster) who invites the bot reads one short, polite refusal — no patient
data in it — and the bot leaves; in a plain room and in an encrypted one."""

from __future__ import annotations

import asyncio
import time

import pytest
from nio import RoomCreateResponse, RoomGetStateEventResponse

from bot.care.texts import Texts
from tests.integration.helpers import NioUser, make_clinic, running_bot

pytestmark = pytest.mark.integration

ENCRYPTED = [{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}]


async def _membership(user: NioUser, room_id: str, mxid: str) -> str | None:
    assert user.client is not None
    resp = await user.client.room_get_state_event(room_id, "m.room.member", mxid)
    return resp.content.get("membership") if isinstance(resp, RoomGetStateEventResponse) else None


async def _until_left(user: NioUser, room_id: str, mxid: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while await _membership(user, room_id, mxid) != "leave":
        if time.monotonic() > deadline:
            raise TimeoutError(f"{mxid} did not leave {room_id}")
        await asyncio.sleep(0.3)


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
async def test_stranger_who_invites_the_bot_gets_one_polite_refusal_then_the_bot_leaves(homeserver, new_user, tmp_path, encrypted):
    clinic = make_clinic(tmp_path, homeserver, new_user)
    stranger_id, password = new_user("stranger")
    stranger = await NioUser(stranger_id, password, homeserver.url, tmp_path / "clients" / "stranger").start()
    bot_id = clinic.bot[0]
    try:
        async with running_bot(clinic.config_path) as bot:
            assert stranger.client is not None
            resp = await stranger.client.room_create(name="bonjour docteur", invite=[bot_id], initial_state=ENCRYPTED if encrypted else [])
            assert isinstance(resp, RoomCreateResponse), resp
            room_id = resp.room_id
            refusal = await stranger.wait_for(lambda s: s.room_id == room_id and s.sender == bot_id)
            await _until_left(stranger, room_id, bot_id)
            body = refusal.content["body"]
            assert refusal.decrypted and refusal.content["msgtype"] == "m.notice"
            assert body == Texts.default().get("stranger_invite", "fr")
            assert "15" in body and "112" in body
            # No patient data: no roster name, no practitioner, no pair room.
            for secret in ("Pat Test", "Dr Ana Test", clinic.patient[0], clinic.practitioner[0], "Messagerie"):
                assert secret not in body
            assert len(body.splitlines()) == 1 and len(body) < 300
            # One message only, and no room for the stranger.
            bot_lines = [s for s in stranger.seen if s.room_id == room_id and s.sender == bot_id]
            assert len(bot_lines) == 1, bot_lines
            assert len(await bot.store.rooms()) == 1  # the roster pair's room only
            # Inviting again the same day: declined without a word (invites cannot make it talk).
            again = await stranger.client.room_create(name="encore", invite=[bot_id])
            assert isinstance(again, RoomCreateResponse), again
            await _until_left(stranger, again.room_id, bot_id)
            assert await _membership(stranger, again.room_id, bot_id) == "leave"
            assert [s for s in stranger.seen if s.room_id == again.room_id and s.sender == bot_id] == []
    finally:
        await stranger.close()
