"""A Space whose sync timeline has a gap (hundreds of children added at once) is not paged back:
nothing in it is for the bot but the practitioner's membership, which is read from the server
instead. A pair room's gap is still paged back, so no patient message is ever skipped."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from nio import RoomGetStateEventError, RoomGetStateEventResponse, RoomMessagesResponse
from unit_helpers import make_setup

from bot.care.service import CareContext
from bot.config import load_config
from bot.runtime.desk_room import DeskRoom
from bot.runtime.router import Router
from bot.runtime.shared import LiveState
from bot.store import Store

BOT = "@carebot:clinic.example"
DOC = "@dr.martin:clinic.example"
SPACE, DESK, PAIR = "!space:x", "!desk:x", "!pair:x"


class Server:
    """What the bot asks the homeserver here: paging back, and one member's state."""

    def __init__(self, membership: str | None) -> None:
        self.user_id = BOT
        self.membership = membership  # None: the server fails the read
        self.paged: list[str] = []
        self.member_reads: list[tuple[str, str]] = []

    async def room_messages(self, room_id, start, end=None, direction=None, limit=10, **_):  # noqa: ANN001, ANN201
        self.paged.append(room_id)
        return RoomMessagesResponse(room_id, chunk=[], start=start, end=None)

    async def room_get_state_event(self, room_id, event_type, state_key=""):  # noqa: ANN001, ANN201
        assert event_type == "m.room.member"
        self.member_reads.append((room_id, state_key))
        if self.membership is None:
            return RoomGetStateEventError("unavailable", status_code="M_UNKNOWN")
        return RoomGetStateEventResponse({"membership": self.membership}, event_type, state_key, room_id)


@pytest.fixture
async def parts(tmp_path):
    setup = make_setup(tmp_path)
    care = CareContext.load(load_config(setup.config))
    store = await Store.open(tmp_path / "carebot.db")
    async with store.transaction():
        await store.save_room(PAIR, "pat-0001", "dr-martin")
        await store.save_desk("dr-martin", desk_room_id=DESK, space_id=SPACE)
    state = LiveState(care=care)
    yield store, state
    await store.close()


def _desk_room(server: Server, store: Store, state: LiveState) -> DeskRoom:
    return DeskRoom(server, SimpleNamespace(store=store, state=state))  # type: ignore[arg-type]


def _gappy_sync(*room_ids: str) -> SimpleNamespace:
    timeline = SimpleNamespace(events=[], limited=True, prev_batch="t-start")
    return SimpleNamespace(
        device_list=SimpleNamespace(changed=[]),
        rooms=SimpleNamespace(invite={}, join={r: SimpleNamespace(state=[], timeline=timeline) for r in room_ids}),
    )


async def test_a_gap_in_a_space_is_not_paged_back_but_a_gap_in_a_pair_room_is(parts) -> None:
    store, state = parts
    server = Server(membership="join")
    desk_room = _desk_room(server, store, state)
    router = Router(server, store, state, on_invite=None, on_device_changes=lambda _: None, handlers=[],  # type: ignore[arg-type]
                    wake=lambda: None, other_rooms=desk_room.handle, gap_without_paging=desk_room.space_gap)
    await router.on_sync(_gappy_sync(SPACE, PAIR), initial=False, since="t-before")  # type: ignore[arg-type]
    assert server.paged == [PAIR]
    assert server.member_reads == [(SPACE, DOC)]


async def test_a_practitioner_who_left_the_space_during_a_gap_is_noted_for_a_new_invite(parts) -> None:
    store, state = parts
    desk_room = _desk_room(Server(membership="leave"), store, state)
    assert await desk_room.space_gap(SPACE)
    assert await store.needs_reinvite(SPACE, DOC)


async def test_a_practitioner_still_in_the_space_is_left_alone_and_other_rooms_are_paged_back(parts) -> None:
    store, state = parts
    server = Server(membership="join")
    desk_room = _desk_room(server, store, state)
    assert await desk_room.space_gap(SPACE)
    assert not await store.needs_reinvite(SPACE, DOC)
    assert not await desk_room.space_gap(DESK) and not await desk_room.space_gap(PAIR)
    assert server.member_reads == [(SPACE, DOC)]


async def test_a_failed_membership_read_fails_the_batch_so_it_is_retried(parts) -> None:
    store, state = parts
    with pytest.raises(RuntimeError, match="Space membership"):
        await _desk_room(Server(membership=None), store, state).space_gap(SPACE)
