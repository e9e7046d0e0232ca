"""A pair room's messages through the Conversation handler, with a real Store: emergency
mentions throttled per room on a controllable clock, edits never touching a request, answers
in threads, commands typed as replies."""

from __future__ import annotations

import itertools

import pytest
from nio import RoomMessageText

from bot.care.service import CareContext, CareService
from bot.config import load_config
from bot.runtime.conversation import Conversation
from bot.runtime.mentions import MentionThrottle
from bot.runtime.shared import LiveState
from bot.store import RoomRecord, Store

ROOM = "!alice-martin:clinic.example"
OTHER = "!bob-martin:clinic.example"
ALICE = "@alice:clinic.example"
DOC = "@dr.martin:clinic.example"
_ids = itertools.count(1)


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def message(sender: str, body: str, relates_to: dict | None = None, **extra: object) -> RoomMessageText:
    content: dict = {"msgtype": "m.text", "body": body, **extra}
    if relates_to is not None:
        content["m.relates_to"] = relates_to
    event = RoomMessageText.from_dict(
        {"type": "m.room.message", "event_id": f"$e{next(_ids)}", "sender": sender,
         "origin_server_ts": 1, "content": content}
    )
    assert isinstance(event, RoomMessageText)
    return event


class Env:
    def __init__(self, store: Store, care: CareContext) -> None:
        self.store = store
        self.clock = Clock()
        self.conversation = Conversation(
            store, CareService(store), LiveState(care=care), wake=lambda: None,
            mentions=MentionThrottle(clock=self.clock),
        )
        self.pair = care.roster.pair("pat-0001", "dr-martin")

    async def say(self, sender: str, body: str, room: str = ROOM, **kw: object) -> tuple[str, list[dict]]:
        before = {i.txn_id for i in await self.store.outbox(limit=10_000)}
        event = message(sender, body, **kw)  # type: ignore[arg-type]
        await self.conversation.handle(RoomRecord(room, "pat-0001", "dr-martin", "active"), self.pair, event)
        return event.event_id, [i.content for i in await self.store.outbox(limit=10_000) if i.txn_id not in before]


@pytest.fixture
async def env(setup, tmp_path):
    store = await Store.open(tmp_path / "carebot.db")
    try:
        yield Env(store, CareContext.load(load_config(setup.config)))
    finally:
        await store.close()


def mentioned(content: dict) -> bool:
    return DOC in content["m.mentions"]["user_ids"]


async def test_twelve_emergencies_give_twelve_notices_and_one_mention_per_room_per_ten_minutes(env: Env):
    notices = []
    for n in range(12):
        env.clock.now += 0.25  # 12 messages in 3 s
        _, out = await env.say(ALICE, f"douleur thoracique {n}")
        assert len(out) == 1 and out[0]["carebot.emergency"] is True
        assert "15" in out[0]["body"] and "112" in out[0]["body"]
        notices.append(out[0])
    assert [mentioned(c) for c in notices] == [True] + [False] * 11
    # Another room is not held back by this one.
    _, out = await env.say(ALICE, "douleur thoracique", room=OTHER)
    assert mentioned(out[0])
    # Ten minutes after the first mention, the practitioner is mentioned again.
    env.clock.now += 9 * 60
    assert not mentioned((await env.say(ALICE, "douleur thoracique"))[1][0])
    env.clock.now += 60
    assert mentioned((await env.say(ALICE, "douleur thoracique"))[1][0])


async def test_a_command_typed_as_a_reply_quoting_the_banner_is_answered_and_raises_no_alarm(env: Env):
    quote = "> <@carebot:clinic.example> Idées suicidaires : appelez le 3114. Urgence : 15.\n\n"
    asked, out = await env.say(ALICE, quote + "!statut", relates_to={"m.in_reply_to": {"event_id": "$banner"}})
    assert len(out) == 1, out
    assert "carebot.emergency" not in out[0]
    assert out[0]["m.relates_to"] == {"m.in_reply_to": {"event_id": asked}}


async def test_an_edit_never_creates_or_decides_a_request_and_the_sender_is_told(env: Env):
    asked, out = await env.say(ALICE, "!renouveler Levothyroxine 75 µg")
    assert out[0]["carebot.renewal"]["status"] == "pending"
    # Element's edit of the request: nothing changes, the patient is told how to change it.
    _, out = await env.say(
        ALICE, "* !renouveler Levothyroxine 100 µg",
        relates_to={"rel_type": "m.replace", "event_id": asked},
        **{"m.new_content": {"msgtype": "m.text", "body": "!renouveler Levothyroxine 100 µg"}},
    )
    assert len(out) == 1 and "carebot.renewal" not in out[0]
    assert "!annuler R1" in out[0]["body"]
    assert out[0]["m.relates_to"] == {"m.in_reply_to": {"event_id": asked}}
    # A crafted edit (no "* ", no m.new_content) of a plain message creates nothing.
    plain, _ = await env.say(ALICE, "bonjour")
    _, out = await env.say(ALICE, "!renouveler Levothyroxine 75 µg", relates_to={"rel_type": "m.replace", "event_id": plain})
    assert len(out) == 1 and "carebot.renewal" not in out[0]
    # The practitioner's edit into an approval decides nothing.
    _, out = await env.say(DOC, "!accepter R1", relates_to={"rel_type": "m.replace", "event_id": plain})
    assert len(out) == 1 and "carebot.renewal" not in out[0]
    assert [(r.id, r.status) for r in await env.store.requests_in_room(ROOM)] == [(1, "pending")]


async def test_an_edited_emergency_phrase_still_gets_the_emergency_numbers(env: Env):
    plain, _ = await env.say(ALICE, "bonjour")
    _, out = await env.say(ALICE, "* j'ai une douleur thoracique", relates_to={"rel_type": "m.replace", "event_id": plain})
    assert len(out) == 1 and out[0]["carebot.emergency"] is True


async def test_an_edit_of_a_plain_message_into_a_plain_message_gets_no_answer(env: Env):
    plain, _ = await env.say(ALICE, "bonjour")
    _, out = await env.say(ALICE, "* bonsoir", relates_to={"rel_type": "m.replace", "event_id": plain})
    assert out == []


async def test_a_command_in_a_thread_is_answered_in_that_thread(env: Env):
    thread = {"rel_type": "m.thread", "event_id": "$root", "is_falling_back": True,
              "m.in_reply_to": {"event_id": "$root"}}
    asked, out = await env.say(ALICE, "!statut", relates_to=thread)
    assert out[0]["m.relates_to"] == {"rel_type": "m.thread", "event_id": "$root", "is_falling_back": False,
                                      "m.in_reply_to": {"event_id": asked}}
