"""Provisioning order and concurrency, against a fake homeserver that answers /createRoom (the
real Reconciler, DeskKeeper and store): desk rooms first, then the pair rooms, then the Spaces;
never more than `rooms.max_concurrent_creations` requests in flight, and a slot freed as soon as
its request is answered, not after the room is recorded."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from nio import RoomCreateResponse
from unit_helpers import Setup, write

from bot.care.service import CareContext
from bot.config import load_config
from bot.desk.rooms import DESK_STATE, SPACE_STATE
from bot.matrix.rooms import PAIR_STATE
from bot.runtime.desks import DeskKeeper
from bot.runtime.reconcile import Reconciler
from bot.runtime.shared import LiveState
from bot.store import Store

ROSTER = """\
practitioners:
  - {id: dr-a, matrix_id: "@dr.a:clinic.example", display_name: "Dr A", messaging: true}
  - {id: dr-b, matrix_id: "@dr.b:clinic.example", display_name: "Dr B", messaging: true}
patients:
""" + "".join(
    f"""  - id: pat-{i}
    matrix_id: "@pat{i}:clinic.example"
    display_name: "Patient {i}"
    care: [{{practitioner: {'dr-a' if i % 2 else 'dr-b'}, last_consultation: 2026-09-14}}]
"""
    for i in range(6)
)


class FakeHomeserver:
    """What the reconciliation asks of the client: /createRoom (through nio's `_send`) and
    the joined rooms. Each created room's kind is noted, in the order the requests came."""

    user_id = "@carebot:clinic.example"
    access_token = "token"

    def __init__(self) -> None:
        self.rooms: dict[str, Any] = {}
        self.kinds: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.started = 0
        self.gate: asyncio.Event | None = None  # when set, requests wait for it

    async def _send(self, response_class: type, method: str, path: str, data: str | None = None, response_data: Any = None) -> Any:
        assert response_class is RoomCreateResponse and "createRoom" in path
        state = {e["type"] for e in json.loads(data or "{}").get("initial_state", [])}
        self.kinds.append("desk" if DESK_STATE in state else "space" if SPACE_STATE in state else "pair" if PAIR_STATE in state else "?")
        self.started += 1
        room_id = f"!room{self.started}:clinic.example"
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            if self.gate is not None:
                await self.gate.wait()
            return RoomCreateResponse(room_id)
        finally:
            self.in_flight -= 1

    async def joined_rooms(self) -> Any:
        return SimpleNamespace(rooms=list(self.rooms))


async def _parts(setup: Setup, tmp_path: Path, slots: int) -> tuple[FakeHomeserver, Store, Reconciler]:
    write(setup.roster, ROSTER)
    config = load_config(setup.config)
    state = LiveState(care=CareContext.load(config))
    store = await Store.open(tmp_path / "carebot.db")
    hs = FakeHomeserver()
    keeper = DeskKeeper(hs, store, state, config.desk, room_version="12", max_concurrent=slots)  # type: ignore[arg-type]
    reconciler = Reconciler(
        hs, store, state, room_version="12", max_concurrent_creations=slots, wake=lambda: None,  # type: ignore[arg-type]
        room_name=keeper.room_name, before=keeper.ensure_desks, then=keeper.reconcile, note_state=keeper.note_server_state,
    )
    return hs, store, reconciler


async def test_desks_are_made_before_the_pair_rooms_and_spaces_after(setup: Setup, tmp_path: Path) -> None:
    hs, store, reconciler = await _parts(setup, tmp_path, slots=4)
    try:
        await reconciler.reconcile()
        # A notice for the practitioner met while the pair rooms are made has its desk already.
        assert hs.kinds == ["desk"] * 2 + ["pair"] * 6 + ["space"] * 2
        desks = {d.practitioner_id: d for d in await store.desks()}
        assert set(desks) == {"dr-a", "dr-b"} and all(d.desk_room_id and d.space_id for d in desks.values())
        assert len(await store.rooms()) == 6

        await reconciler.reconcile()  # nothing new: no second desk, room or Space
        assert hs.started == 10
    finally:
        await store.close()


async def test_no_more_creations_in_flight_than_configured(setup: Setup, tmp_path: Path) -> None:
    hs, store, reconciler = await _parts(setup, tmp_path, slots=2)
    try:
        await reconciler.reconcile()
        assert hs.started == 10
        assert hs.most_in_flight == 2
    finally:
        await store.close()


async def test_a_creation_slot_is_free_while_the_room_before_is_recorded(setup: Setup, tmp_path: Path) -> None:
    """One slot: the second pair room's request starts while the first room's record is still
    being written (the record waits for it here; held slots would never let it start)."""
    hs, store, reconciler = await _parts(setup, tmp_path, slots=1)
    save_room = store.save_room
    pair_requests = lambda: hs.kinds.count("pair")  # noqa: E731

    async def recorded_once_the_next_request_started(room_id: str, *args: Any, **kw: Any) -> None:
        started_before = pair_requests()
        while pair_requests() == started_before and pair_requests() < 6:
            await asyncio.sleep(0.005)
        await save_room(room_id, *args, **kw)

    store.save_room = recorded_once_the_next_request_started  # type: ignore[method-assign]
    try:
        await asyncio.wait_for(reconciler.reconcile(), 10)
        assert len(await store.rooms()) == 6
        assert hs.most_in_flight == 1
    finally:
        await store.close()
