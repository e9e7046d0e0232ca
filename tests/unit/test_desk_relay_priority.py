"""A new request's desk notice is queued as background (the outbox sends the patients' replies
of a burst first); an emergency alert never is. Both still go to the desk, with the pair-room
answer kept for the patient."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bot.care.service import Reply
from bot.desk.service import DeskPost
from bot.runtime.desk_room import DeskRelay


class FakeService:
    def emergency(self, care: Any, pair: Any, room_id: str, event_id: str) -> DeskPost:
        return DeskPost("emergency alert", alert=True)

    async def new_request(self, care: Any, pair: Any, request: Any) -> DeskPost:
        return DeskPost(f"new request {request.id}", request=request)

    async def absence_reply(self, care: Any, pair: Any, now: Any) -> None:
        return None


class FakeStore:
    async def request(self, number: int) -> Any:
        return SimpleNamespace(id=number)


class FakeDesks:
    def __init__(self) -> None:
        self.posts: list[tuple[str, bool]] = []
        self.state = SimpleNamespace(care=None)
        self.store = FakeStore()
        self.service = FakeService()
        self.clock = SimpleNamespace(now=lambda: None)

    async def room_of(self, practitioner_id: str) -> str:
        return "!desk:x"

    async def post(self, practitioner: Any, post: DeskPost, txn: str, *, mention: bool = False,
                   room_id: str | None = None, background: bool = False) -> bool:
        self.posts.append((post.text, background))
        return True

    def wake(self) -> None:
        pass


PAIR = SimpleNamespace(practitioner=SimpleNamespace(id="dr-1", matrix_id="@dr:x"))


async def test_a_new_requests_desk_notice_is_background_and_an_emergency_alert_is_not():
    desks = FakeDesks()
    relay = DeskRelay(desks)  # type: ignore[arg-type]
    replies = [
        Reply("numbers", emergency=True, for_practitioner="possible emergency"),
        Reply("R7 pending", renewal=("R7", "pending", "Levothyroxine", ()), for_practitioner="new request R7"),
    ]
    kept, to_desk = await relay.after(PAIR, "patient", replies, "$ev", "!pair:x")  # type: ignore[arg-type]
    assert to_desk and kept == replies
    assert desks.posts == [("emergency alert", False), ("new request 7", True)]


async def test_only_a_background_desk_post_is_marked_so_for_the_outbox(tmp_path):
    from bot.care.roster import Practitioner
    from bot.runtime.desk_room import Desks
    from bot.runtime.shared import BACKGROUND
    from bot.store import Store

    store = await Store.open(tmp_path / "db")
    try:
        desks = Desks(store, None, None, None, lambda: None)  # type: ignore[arg-type]
        doc = Practitioner(id="dr-1", matrix_id="@dr:x", display_name="Dr One", messaging=True)
        async with store.transaction():
            await desks.post(doc, DeskPost("new request"), "t-bg", room_id="!desk:x", background=True)
            await desks.post(doc, DeskPost("welcome"), "t-fg", room_id="!desk:x")
        queued = {i.txn_id: i.content for i in store.queued()}
        assert queued["t-bg"].get(BACKGROUND) is True and BACKGROUND not in queued["t-fg"]
    finally:
        await store.close()
