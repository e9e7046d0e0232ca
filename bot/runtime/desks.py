"""Spaces and desks: for each practitioner with a verified pair, one Space holding their desk
and pair rooms, and one encrypted desk room; pair-room names that tell their rooms apart.

Run after the pair rooms are reconciled, so a new Space is created with its first children in
its initial state (one request, at most SPACE_INITIAL_CHILDREN of them: a /createRoom with a
thousand state events outlives a client's request timeout), and the rest, like later changes,
are single `m.space.child` updates.
Found again from their `carebot.desk` / `carebot.space` state after a lost database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog
from nio import AsyncClient, RoomPutStateResponse, UnknownEvent

from bot.care.roster import Pair, Practitioner
from bot.config import DeskConfig
from bot.desk.naming import pair_room_names
from bot.desk.rooms import DESK_ORDER, DESK_STATE, SPACE_CHILD, SPACE_STATE, child_content, desk_body, space_body
from bot.runtime.room_creation import create_room
from bot.runtime.shared import LiveState, settle
from bot.store import Store

log = structlog.get_logger("carebot")

SPACE_INITIAL_CHILDREN = 100  # pair rooms in a new Space's /createRoom; the rest are added after


class DeskKeeper:
    def __init__(self, client: AsyncClient, store: Store, state: LiveState, config: DeskConfig, *, room_version: str, max_concurrent: int) -> None:
        self._client = client
        self._store = store
        self._state = state
        self._config = config
        self._room_version = room_version
        self._max = max_concurrent
        self._seen: dict[str, tuple[str, str]] = {}  # room id -> ("desk" | "space", practitioner id)
        self._names: tuple[object, dict[tuple[str, str], str]] | None = None
        self._via = client.user_id.split(":", 1)[1]  # the bot's server (v12 room ids name none)

    # -- what the sync tells -------------------------------------------------------------------
    def note_state(self, room_id: str, events: list[Any]) -> None:
        for event in events:
            if isinstance(event, UnknownEvent) and event.type in (DESK_STATE, SPACE_STATE) and event.sender == self._client.user_id:
                practitioner = event.source.get("content", {}).get("practitioner")
                if isinstance(practitioner, str):
                    self._seen[room_id] = ("desk" if event.type == DESK_STATE else "space", practitioner)

    def note_server_state(self, room_id: str, events: list[dict[str, Any]]) -> None:
        """The same, from a room's state as the server returns it (after a lost database)."""
        for ev in events:
            content = ev.get("content") or {}
            if ev.get("type") in (DESK_STATE, SPACE_STATE) and ev.get("state_key") == "" and ev.get("sender") == self._client.user_id:
                if isinstance(content.get("practitioner"), str):
                    self._seen[room_id] = ("desk" if ev["type"] == DESK_STATE else "space", content["practitioner"])

    def room_name(self, pair: Pair) -> str:
        """The name of a pair room (memoised per care context: roster reloads recompute)."""
        care = self._state.care
        if self._names is None or self._names[0] is not care:
            self._names = (care, pair_room_names(care, self._config.room_names))
        return self._names[1][(pair.patient.id, pair.practitioner.id)]

    # -- reconciliation --------------------------------------------------------------------------
    async def reconcile(self) -> None:
        care = self._state.care
        by_practitioner: dict[str, list[Pair]] = {}
        for pair in care.roster.verified_pairs():
            by_practitioner.setdefault(pair.practitioner.id, []).append(pair)
        rooms = {(r.patient_id, r.practitioner_id): r.room_id for r in await self._store.rooms() if r.state == "active"}
        await self._adopt()
        desks = {d.practitioner_id: d for d in await self._store.desks()}
        sem = asyncio.Semaphore(self._max)

        async def one(pid: str, pairs: list[Pair]) -> None:
            async with sem:
                practitioner = pairs[0].practitioner
                record = desks.get(pid)
                desk_id = record.desk_room_id if record else None
                if desk_id is None:
                    desk_id = await self._create_desk(practitioner)
                    if desk_id is None:
                        return
                pair_rooms = [rooms[(p.patient.id, pid)] for p in pairs if (p.patient.id, pid) in rooms]
                space_id = record.space_id if record else None
                if space_id is None:
                    space_id = await self._create_space(practitioner, desk_id, pair_rooms)
                if space_id is not None:
                    await self._children(space_id, desk_id, pair_rooms)
                await self._ensure_invited(practitioner, [desk_id] + ([space_id] if space_id else []))
                await self._rename(pairs, rooms)

        await settle(one(pid, pairs) for pid, pairs in by_practitioner.items())
        for pid, record in desks.items():  # no verified pair any more: the Space keeps the desk only
            if pid not in by_practitioner and record.space_id and record.desk_room_id:
                await self._children(record.space_id, record.desk_room_id, [])

    async def _adopt(self) -> None:
        known = {d.practitioner_id: d for d in await self._store.desks()}
        for room_id, (kind, pid) in list(self._seen.items()):
            record = known.get(pid)
            current = None if record is None else (record.desk_room_id if kind == "desk" else record.space_id)
            if current is None:
                async with self._store.transaction():
                    await self._store.save_desk(pid, **({"desk_room_id": room_id} if kind == "desk" else {"space_id": room_id}))
                log.info("desk.adopted", room_id=room_id, kind=kind, practitioner=pid)

    async def _create_desk(self, practitioner: Practitioner) -> str | None:
        return await self._create("desk", practitioner, desk_body, "desk_room_name", "desk_topic")

    async def _create_space(self, practitioner: Practitioner, desk_id: str, pair_rooms: list[str]) -> str | None:
        """The Space with the desk and its first pair rooms; the caller adds the others."""
        children = [(desk_id, child_content(self._via, order=DESK_ORDER, suggested=True))]
        children += [(room_id, child_content(self._via)) for room_id in pair_rooms[:SPACE_INITIAL_CHILDREN]]
        return await self._create("space", practitioner, space_body, "space_name", "space_topic", children)

    async def _create(
        self, kind: str, practitioner: Practitioner, make_body: Callable[..., dict[str, Any]], name_key: str, topic_key: str,
        children: list[tuple[str, dict[str, Any]]] | None = None,
    ) -> str | None:
        """A desk or a Space (`kind`), its body from `make_body`; a Space created with its
        `children` in its initial state. Recorded, audited and remembered once created."""
        care = self._state.care
        locale = getattr(practitioner, "locale", None) or care.default_locale
        body = make_body(
            bot=self._client.user_id, practitioner_mxid=practitioner.matrix_id, practitioner_id=practitioner.id,
            name=care.texts.get(name_key, locale, practitioner=practitioner.display_name),
            topic=care.texts.get(topic_key, locale), room_version=self._room_version,
        )
        if children is not None:
            body["initial_state"] += [{"type": SPACE_CHILD, "state_key": rid, "content": c} for rid, c in children]
        room_id = await create_room(self._client, body, f"{kind}.create_failed", practitioner=practitioner.id)
        if room_id is None:
            return None
        details: dict[str, Any] = {"practitioner": practitioner.id}
        if children is not None:
            details["children"] = len(children)
        async with self._store.transaction():
            await self._store.save_desk(practitioner.id, **({"desk_room_id": room_id} if kind == "desk" else {"space_id": room_id}))
            for child, _ in children or ():
                await self._store.add_space_child(room_id, child)
            await self._store.audit("bot", f"{kind}.created", room_id, details)
        self._seen[room_id] = (kind, practitioner.id)
        log.info(f"{kind}.created", room_id=room_id, **details)
        return room_id

    async def _children(self, space_id: str, desk_id: str, pair_rooms: list[str]) -> None:
        """New pairs' rooms added, closed pairs' rooms removed (an empty content removes)."""
        current = await self._store.space_children(space_id)
        wanted = {desk_id, *pair_rooms}
        for room_id in sorted(wanted - current):
            content = child_content(self._via, order=DESK_ORDER, suggested=True) if room_id == desk_id else child_content(self._via)
            if await self._put(space_id, SPACE_CHILD, content, room_id):
                async with self._store.transaction():
                    await self._store.add_space_child(space_id, room_id)
                log.info("space.child_added", space_id=space_id, room_id=room_id)
        for room_id in sorted(current - wanted):
            if await self._put(space_id, SPACE_CHILD, {}, room_id):
                async with self._store.transaction():
                    await self._store.drop_space_child(space_id, room_id)
                log.info("space.child_removed", space_id=space_id, room_id=room_id)

    async def _rename(self, pairs: list[Pair], rooms: dict[tuple[str, str], str]) -> None:
        """Rooms named under an older scheme (or before a roster change) get their name now."""
        for pair in pairs:
            room_id = rooms.get((pair.patient.id, pair.practitioner.id))
            room = self._client.rooms.get(room_id) if room_id else None
            if room is None:
                continue  # just created with the right name, not synced yet
            wanted = self.room_name(pair)
            if room.name != wanted and await self._put(room.room_id, "m.room.name", {"name": wanted}):
                room.name = wanted  # nio updates it at the next sync; don't put it twice meanwhile
                log.info("room.renamed", room_id=room.room_id)

    async def _ensure_invited(self, practitioner: Practitioner, room_ids: list[str]) -> None:
        """Invite again a practitioner who left (or rejected) their desk or Space."""
        for room_id in room_ids:
            if not await self._store.needs_reinvite(room_id, practitioner.matrix_id):
                continue
            resp = await self._client.room_invite(room_id, practitioner.matrix_id)
            if getattr(resp, "status_code", None) is None or "already" in str(getattr(resp, "message", "")):
                async with self._store.transaction():
                    await self._store.reinvited(room_id, practitioner.matrix_id)
                log.info("desk.reinvited", room_id=room_id, practitioner=practitioner.id)

    async def _put(self, room_id: str, event_type: str, content: dict[str, Any], state_key: str = "") -> bool:
        resp = await self._client.room_put_state(room_id, event_type, content, state_key=state_key)
        if not isinstance(resp, RoomPutStateResponse):
            log.warning("desk.state_failed", room_id=room_id, type=event_type, status=getattr(resp, "status_code", None))
            return False
        return True
