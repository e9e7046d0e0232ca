"""Redactions in a pair room, with a real Store and a fake homeserver for the pinned state:
the patient withdrawing a pending request's message cancels it (told to both); a redacted
pinned banner is posted and pinned again."""

from __future__ import annotations

import itertools

import pytest
from nio import Event, RoomGetStateEventResponse

from bot.care.service import CareContext, CareService
from bot.config import load_config
from bot.runtime.conversation import Conversation
from bot.runtime.redactions import Redactions
from bot.runtime.shared import PIN, LiveState
from bot.store import RoomRecord, Store
from test_conversation_relations import ALICE, DOC, ROOM, message

_ids = itertools.count(1)


class FakeClient:
    user_id = "@carebot:clinic.example"

    def __init__(self) -> None:
        self.pinned: list[str] = ["$banner"]

    async def room_get_state_event(self, room_id: str, event_type: str):
        assert event_type == "m.room.pinned_events"
        return RoomGetStateEventResponse({"pinned": self.pinned}, event_type, "", room_id)


def redaction(sender: str, redacts: str, top_level: bool = False):
    source = {"type": "m.room.redaction", "event_id": f"$red{next(_ids)}", "sender": sender,
              "origin_server_ts": 1, "content": {"redacts": redacts}}
    if top_level:  # room versions before 11
        source["redacts"] = redacts
    return Event.parse_event(source)


class Env:
    def __init__(self, store: Store, care: CareContext) -> None:
        self.store = store
        self.client = FakeClient()
        state = LiveState(care=care)
        service = CareService(store)
        self.pair = care.roster.pair("pat-0001", "dr-martin")
        self.record = RoomRecord(ROOM, "pat-0001", "dr-martin", "active")
        self.conversation = Conversation(store, service, state, wake=lambda: None)
        self.redactions = Redactions(self.client, store, state, wake=lambda: None)  # type: ignore[arg-type]

    async def new(self, handler, event) -> list[dict]:
        before = {i.txn_id for i in await self.store.outbox(limit=10_000)}
        await handler.handle(self.record, self.pair, event)
        return [i.content for i in await self.store.outbox(limit=10_000) if i.txn_id not in before]


@pytest.fixture
async def env(setup, tmp_path):
    store = await Store.open(tmp_path / "carebot.db")
    try:
        yield Env(store, CareContext.load(load_config(setup.config)))
    finally:
        await store.close()


@pytest.mark.parametrize("top_level", [False, True])
async def test_the_patient_redacting_a_pending_requests_message_cancels_it_and_both_are_told(env: Env, top_level):
    ask = message(ALICE, "!renouveler Levothyroxine 75 µg")
    await env.new(env.conversation, ask)
    out = await env.new(env.redactions, redaction(ALICE, ask.event_id, top_level))
    assert len(out) == 1
    assert out[0]["carebot.renewal"] == {"id": "R1", "status": "cancelled", "medication": "Levothyroxine 75 µg", "rules": []}
    assert DOC in out[0]["m.mentions"]["user_ids"]  # the practitioner is told, by name
    assert (await env.store.request(1)).status == "cancelled"  # type: ignore[union-attr]
    # Approving it afterwards changes nothing.
    out = await env.new(env.conversation, message(DOC, "!accepter R1"))
    assert out[0]["carebot.renewal"]["status"] == "cancelled"


async def test_a_redaction_by_the_practitioner_or_of_a_decided_request_cancels_nothing(env: Env):
    ask = message(ALICE, "!renouveler Levothyroxine 75 µg")
    await env.new(env.conversation, ask)
    assert await env.new(env.redactions, redaction(DOC, ask.event_id)) == []
    assert (await env.store.request(1)).status == "pending"  # type: ignore[union-attr]
    await env.new(env.conversation, message(DOC, "!accepter R1"))
    assert await env.new(env.redactions, redaction(ALICE, ask.event_id)) == []
    assert (await env.store.request(1)).status == "approved"  # type: ignore[union-attr]


async def test_a_redacted_pinned_banner_is_posted_and_pinned_again_once(env: Env):
    event = redaction(DOC, "$banner")
    out = await env.new(env.redactions, event)
    assert len(out) == 1 and out[0]["carebot.disclaimer"] is True and out[0][PIN] is True
    assert all(n in out[0]["body"] for n in ("15", "112", "114", "3114"))
    assert await env.new(env.redactions, event) == []  # the same redaction again: nothing more
    env.client.pinned = ["$other"]
    assert await env.new(env.redactions, redaction(DOC, "$some-message")) == []
