"""The trust gate on the paths a first version left unchecked, with a real Store and the desk's
real components (the Matrix client is a stand-in: nothing here crosses the network):

* `!absent` / `!retour` typed in the desk from a device the gate does not trust change nothing
  (the patient-facing absence notice stays as it was) and the practitioner is told in the desk;
* the emergency notice answering a refused command mentions the practitioner at most once per
  room per window, sharing the conversation's throttle, while the patient always gets the numbers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from nio import RoomMessageText
from unit_helpers import make_setup

from bot.care.service import CareContext, CareService
from bot.config import load_config
from bot.matrix.sender_trust import SenderTrust
from bot.runtime.desk_wiring import desk_parts
from bot.runtime.mentions import MentionThrottle
from bot.runtime.practitioner_notice import PractitionerNotices
from bot.runtime.shared import LiveState
from bot.runtime.trust_gate import TrustGate
from bot.store import Store

ROOM = "!alice-martin:clinic.example"
DESK = "!desk-martin:clinic.example"
ALICE = "@alice:clinic.example"
DOCTOR = "@dr.martin:clinic.example"
UNTRUSTED = SenderTrust(False, "not_cross_signed", "LAPTOP", "Unknown laptop")
TRUSTED = SenderTrust(True, "cross_signed", "PHONE")


def _event(body: str, sender: str = DOCTOR, n: int = 0) -> RoomMessageText:
    event = RoomMessageText.from_dict(
        {"type": "m.room.message", "event_id": f"${n}-" + body.replace(" ", "_"), "sender": sender,
         "origin_server_ts": 1, "content": {"msgtype": "m.text", "body": body}}
    )
    assert isinstance(event, RoomMessageText)
    return event


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass
class Env:
    store: Store
    care: CareContext
    gate: TrustGate
    desk: Any
    mentions: MentionThrottle
    clock: Clock
    verdict: dict[str, SenderTrust]

    @property
    def pair(self) -> Any:
        return self.care.roster.pair("pat-0001", "dr-martin")

    async def queued(self) -> list[tuple[str, dict]]:
        return [(i.room_id, i.content) for i in await self.store.outbox(limit=100)]


@pytest.fixture
async def env(tmp_path):
    """A gate wired as `assemble()` wires it: desk notices through PractitionerNotices, one
    mention throttle (on a controllable clock)."""
    config = load_config(make_setup(tmp_path).config)
    care = CareContext.load(config)
    state = LiveState(care=care)
    store = await Store.open(tmp_path / "carebot.db")
    client = SimpleNamespace(user_id="@carebot:clinic.example", rooms={})
    desk = desk_parts(config, store, client, state, CareService(store), "10", wake=lambda: None)  # type: ignore[arg-type]
    assert desk is not None, "the desk is on by default"
    verdict: dict[str, SenderTrust] = {}

    class Check:
        async def of(self, event: Any, room_id: str) -> SenderTrust:
            return verdict[event.sender]

    clock = Clock()
    mentions = MentionThrottle(clock=clock)
    notices = PractitionerNotices(store, desk=desk.desks.notify)
    gate = TrustGate(store, state, Check(), lambda: None, notices, mentions)  # type: ignore[arg-type]
    desk.room.attach(gate)
    async with store.transaction():
        await store.save_desk("dr-martin", desk_room_id=DESK)
    try:
        yield Env(store, care, gate, desk, mentions, clock, verdict)
    finally:
        await store.close()


async def test_an_untrusted_device_cannot_set_an_absence_from_the_desk_and_is_told_there(env: Env):
    env.verdict[DOCTOR] = UNTRUSTED
    back = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    event = _event(f"!absent {back} Le Dr Bernard me remplace")
    assert await env.desk.room.handle(DESK, event) is True
    assert await env.store.absence("dr-martin") is None  # patients are told nothing new
    assert await env.store.is_processed(event.event_id)
    ((room, content),) = await env.queued()
    assert room == DESK  # for the practitioner alone
    assert "Unknown laptop (LAPTOP)" in content["body"] and "!absent" in content["body"], content["body"]
    assert DOCTOR in content["m.mentions"]["user_ids"]
    (row,) = [r for r in await env.store.audit_since(0) if r["action"] == "trust.command_refused"]
    assert row["actor"] == "dr-martin"
    assert row["details"] == {"command": "away", "device_id": "LAPTOP", "reason": "not_cross_signed"}


async def test_an_untrusted_device_cannot_end_an_absence_but_a_trusted_one_can(env: Env):
    env.verdict[DOCTOR] = TRUSTED
    back = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    await env.desk.room.handle(DESK, _event(f"!absent {back}"))
    assert await env.store.absence("dr-martin") is not None

    env.verdict[DOCTOR] = UNTRUSTED
    await env.desk.room.handle(DESK, _event("!retour", n=1))
    assert await env.store.absence("dr-martin") is not None  # still away for the patients
    refused = [r["details"]["command"] for r in await env.store.audit_since(0) if r["action"] == "trust.command_refused"]
    assert refused == ["back"]

    env.verdict[DOCTOR] = TRUSTED
    await env.desk.room.handle(DESK, _event("!retour", n=2))
    assert await env.store.absence("dr-martin") is None


async def test_refused_emergencies_always_give_the_numbers_but_mention_the_practitioner_once_per_window(env: Env):
    env.verdict[ALICE] = UNTRUSTED
    emergencies = []
    for n in range(3):
        env.clock.now += 1
        before = len(await env.queued())
        event = _event(f"!renouveler Levothyroxine, douleur thoracique {n}", sender=ALICE, n=n)
        assert await env.gate.refused(ROOM, env.pair, "patient", event) is True
        emergencies += [c for _, c in (await env.queued())[before:] if c.get("carebot.emergency")]
    assert len(emergencies) == 3 and all("15" in c["body"] and "112" in c["body"] for c in emergencies)
    assert [DOCTOR in c["m.mentions"]["user_ids"] for c in emergencies] == [True, False, False]

    env.clock.now += 600  # the window has passed
    before = len(await env.queued())
    await env.gate.refused(ROOM, env.pair, "patient", _event("!renouveler douleur thoracique", sender=ALICE, n=9))
    (emergency,) = [c for _, c in (await env.queued())[before:] if c.get("carebot.emergency")]
    assert DOCTOR in emergency["m.mentions"]["user_ids"]


async def test_the_refused_emergency_shares_the_conversation_budget_of_mentions(env: Env):
    assert env.mentions.allow(ROOM)  # the conversation just mentioned the practitioner here
    env.verdict[ALICE] = UNTRUSTED
    await env.gate.refused(ROOM, env.pair, "patient", _event("!renouveler douleur thoracique", sender=ALICE))
    (emergency,) = [c for _, c in await env.queued() if c.get("carebot.emergency")]
    assert "15" in emergency["body"] and DOCTOR not in emergency["m.mentions"]["user_ids"]
