"""Invites to the bot: a stranger is told once (a day), politely and without patient data."""

from __future__ import annotations

from nio import InviteMemberEvent
from unit_helpers import make_setup

from bot.care.service import CareContext
from bot.config import load_config
from bot.runtime.invites import STRANGER_QUIET_S, Invites
from bot.runtime.shared import LEAVE_AFTER, LiveState
from bot.store import Store

BOT = "@carebot:clinic.example"
STRANGER = "@mallory:elsewhere.example"


class FakeClient:
    """Records what the bot does with an invite (the real one is tested against Synapse)."""

    user_id = BOT

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def join(self, room_id: str):
        self.calls.append(("join", room_id))
        return type("Joined", (), {"room_id": room_id})()

    async def room_leave(self, room_id: str) -> None:
        self.calls.append(("leave", room_id))


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def _invite(sender: str) -> list[InviteMemberEvent]:
    source = {"type": "m.room.member", "sender": sender, "state_key": BOT, "content": {"membership": "invite"}}
    return [InviteMemberEvent.from_dict(source)]


async def test_a_stranger_is_told_once_a_day_then_declined_in_silence(tmp_path):
    setup = make_setup(tmp_path)
    care = CareContext.load(load_config(setup.config))
    store = await Store.open(tmp_path / "carebot.db")
    client, clock = FakeClient(), Clock()
    invites = Invites(client, store, LiveState(care=care), lambda: None, clock=clock)  # type: ignore[arg-type]
    try:
        await invites.on_invite("!r1:x", _invite(STRANGER))
        assert client.calls == [("join", "!r1:x")]
        [item] = await store.outbox()
        assert item.room_id == "!r1:x" and item.content[LEAVE_AFTER] is True
        assert item.content["body"] == care.texts.get("stranger_invite", "fr")
        assert "Alice" not in item.content["body"] and "Martin" not in item.content["body"]
        # Again the same day: declined, nothing said.
        clock.now += STRANGER_QUIET_S - 1
        await invites.on_invite("!r2:x", _invite(STRANGER))
        assert client.calls[-1] == ("leave", "!r2:x")
        assert len(await store.outbox()) == 1
        # A day later they are told again.
        clock.now += 2
        await invites.on_invite("!r3:x", _invite(STRANGER))
        assert client.calls[-1] == ("join", "!r3:x")
        assert len(await store.outbox()) == 2
    finally:
        await store.close()
