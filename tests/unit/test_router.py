"""The router hands each room event to the first handler of its kind, and only where it may."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from unit_helpers import make_setup

from bot.care.service import CareContext
from bot.config import load_config
from bot.runtime.router import Router
from bot.runtime.shared import LiveState
from bot.store import Store

BOT = "@carebot:clinic.example"
ALICE = "@alice:clinic.example"


@dataclass
class Ping:
    sender: str


class Recorder:
    kinds = (Ping,)

    def __init__(self, active_pairs_only: bool) -> None:
        self.active_pairs_only = active_pairs_only
        self.seen: list[tuple[str, str | None]] = []

    async def handle(self, record, pair, event) -> None:
        self.seen.append((record.room_id, pair.patient.id if pair else None))


async def _router(tmp_path, handlers):
    setup = make_setup(tmp_path)
    care = CareContext.load(load_config(setup.config))
    store = await Store.open(tmp_path / "carebot.db")
    async with store.transaction():
        await store.save_room("!open:x", "pat-0001", "dr-martin")
        await store.save_room("!closed:x", "pat-0002", "dr-martin", state="closed")
    client = SimpleNamespace(user_id=BOT)
    router = Router(client, store, LiveState(care=care), on_invite=None, on_device_changes=None,  # type: ignore[arg-type]
                    handlers=handlers, wake=lambda: None)
    return router, store


async def test_a_new_handler_plugs_in_and_gets_its_events_in_active_pair_rooms_only(tmp_path):
    desk = Recorder(active_pairs_only=True)
    router, store = await _router(tmp_path, [desk])
    await router.on_event("!open:x", Ping(ALICE))
    await router.on_event("!closed:x", Ping(ALICE))
    await router.on_event("!not-a-pair-room:x", Ping(ALICE))
    await router.on_event("!open:x", Ping(BOT))  # the bot's own echo
    await router.on_event("!open:x", object())  # a kind nobody handles
    assert desk.seen == [("!open:x", "pat-0001")]
    await store.close()


async def test_a_handler_for_any_room_state_also_sees_closed_rooms_and_the_first_match_wins(tmp_path):
    police, second = Recorder(active_pairs_only=False), Recorder(active_pairs_only=False)
    router, store = await _router(tmp_path, [police, second])
    await router.on_event("!open:x", Ping(ALICE))
    await router.on_event("!closed:x", Ping(ALICE))
    assert police.seen == [("!open:x", "pat-0001"), ("!closed:x", "pat-0002")]
    assert second.seen == []
    await store.close()
