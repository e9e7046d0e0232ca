"""Rooms: exactly one active room per verified pair. Create, adopt (found from `carebot.pair`
state after a lost database), reopen, close, and invite again members who left."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from nio import AsyncClient, RoomGetStateEventResponse, RoomPutStateResponse

from bot.care.renewals import format_id
from bot.care.roster import Pair
from bot.matrix.messages import notice, renewal_meta
from bot.matrix.rooms import PAIR_STATE, closed_power_levels, create_room_body, open_power_levels
from bot.runtime.membership import FIRST_MEMBER
from bot.runtime.room_creation import create_room
from bot.runtime.shared import PIN, TO, LiveState, Wake, settle, txn_for
from bot.store import RoomRecord, Store

POWER_LEVELS = "m.room.power_levels"

log = structlog.get_logger("carebot")


class Reconciler:
    def __init__(
        self,
        client: AsyncClient,
        store: Store,
        state: LiveState,
        *,
        room_version: str,
        max_concurrent_creations: int,
        wake: Wake,
        room_name: Callable[[Pair], str] | None = None,
        before: Callable[[], Awaitable[None]] | None = None,
        then: Callable[[], Awaitable[None]] | None = None,
        note_state: Callable[[str, list[dict[str, Any]]], None] | None = None,
        on_reconciled: "Callable[[float], None] | None" = None,
    ) -> None:
        # The desk (bot/runtime/desks.py): pair-room names, desk rooms made before the pair
        # rooms (`before`), Spaces kept after them (`then`), and its own state found again on
        # the server after a lost database.
        self._room_name = room_name
        self._before = before
        self._then = then
        self._note_state = note_state
        self._client = client
        self._store = store
        self._state = state
        self._room_version = room_version
        # At most this many /createRoom requests in flight (`rooms.max_concurrent_creations`);
        # a slot is held for the request only, not for the bookkeeping after it.
        self._creations = asyncio.Semaphore(max_concurrent_creations)
        self._wake = wake
        self._lock = asyncio.Lock()
        self._needed = False
        self._sealed: set[str] = set()  # closed rooms whose levels were checked this run
        self._on_reconciled = on_reconciled  # seconds a successful reconciliation took (metrics, readiness)

    async def reconcile_or_retry_later(self) -> None:
        """Reconcile; if the homeserver fails us half-way, `retry_if_needed` tries again."""
        try:
            await self.reconcile()
            self._needed = False
        except Exception as e:  # noqa: BLE001 - rooms are made idempotently: a retry is safe
            self._needed = True
            log.warning("rooms.reconcile_failed", error=type(e).__name__)

    async def retry_if_needed(self) -> None:
        if self._needed:
            await self.reconcile_or_retry_later()

    async def reconcile(self) -> None:
        """Exactly one active room per verified pair; rooms of removed pairs are closed."""
        started = time.monotonic()
        await self._reconcile()
        if self._on_reconciled is not None:
            self._on_reconciled(time.monotonic() - started)

    async def _reconcile(self) -> None:
        async with self._lock:
            store, seen = self._store, self._state.seen_pairs
            wanted = {(p.patient.id, p.practitioner.id): p for p in self._state.care.roster.verified_pairs()}
            known = {(r.patient_id, r.practitioner_id): r for r in await store.rooms()}
            # Rooms found from their carebot.pair state but missing in the database.
            joined: set[str] = set()
            seen_keys = set(seen.values())  # a set: 10,000 pairs would make a list scan quadratic
            if any(k not in known and k not in seen_keys for k in wanted):
                joined = await self._pairs_from_server({r.room_id for r in known.values()})
            for room_id, key in seen.items():
                if key not in known and (room_id in self._client.rooms or room_id in joined):
                    state = "active" if key in wanted else "closed"
                    async with store.transaction():
                        await store.save_room(room_id, *key, state=state)
                    known[key] = RoomRecord(room_id, key[0], key[1], state)
                    log.info("room.adopted", room_id=room_id, pair=f"{key[0]}/{key[1]}")
            if self._before is not None:
                await self._before()
            # One query for every pending re-invite (not two per pair: 20,000 at 10,000 pairs).
            reinvites = await store.pending_reinvites()
            rooms_to_reinvite = {room_id for room_id, _ in reinvites}

            async def provision(key: tuple[str, str], pair: Pair) -> None:
                record = known.get(key)
                if record is None:
                    await self.create_room(pair)  # takes a creation slot for the request
                    return
                async with self._creations:
                    if record.state != "active":
                        await self._reopen_room(record, pair)
                    else:
                        await self._ensure_members(record.room_id, pair, reinvites)

            def needs_work(key: tuple[str, str]) -> bool:
                record = known.get(key)
                return record is None or record.state != "active" or record.room_id in rooms_to_reinvite

            await settle(provision(k, p) for k, p in wanted.items() if needs_work(k))
            for key, record in known.items():
                if key not in wanted and record.state == "active":
                    await self._close_room(record)
                elif key not in wanted and record.room_id not in self._sealed:
                    # Closed before rooms were made read-only (or by an older version): make
                    # sure once per run that nobody can write there.
                    try:
                        await self._set_power_levels(record.room_id, closed_power_levels)
                        self._sealed.add(record.room_id)
                    except Exception as e:  # noqa: BLE001 - tried again at the next reconciliation
                        log.warning("room.seal_failed", room_id=record.room_id, error=type(e).__name__)
            if self._then is not None:
                await self._then()

    async def _pairs_from_server(self, known_rooms: set[str]) -> set[str]:
        """Ask the server (not the sync, which Synapse may answer from its response cache
        after a lost database) which joined rooms carry our `carebot.pair` state."""
        client, seen = self._client, self._state.seen_pairs
        resp = await client.joined_rooms()
        rooms = set(getattr(resp, "rooms", None) or ())
        for room_id in rooms - known_rooms - set(seen):
            state = await client.room_get_state(room_id)
            if self._note_state is not None:
                self._note_state(room_id, list(getattr(state, "events", None) or ()))
            for ev in getattr(state, "events", None) or ():
                content = ev.get("content", {})
                if (ev.get("type") == PAIR_STATE and ev.get("state_key") == "" and ev.get("sender") == client.user_id
                        and {"patient", "practitioner"} <= set(content)):
                    seen[room_id] = (content["patient"], content["practitioner"])
        return rooms

    async def create_room(self, pair: Pair) -> None:
        care = self._state.care
        locale = care.locale_of(pair, pair.patient.matrix_id)
        body = create_room_body(
            bot=self._client.user_id,
            patient_mxid=pair.patient.matrix_id,
            practitioner_mxid=pair.practitioner.matrix_id,
            patient_id=pair.patient.id,
            practitioner_id=pair.practitioner.id,
            name=self._room_name(pair) if self._room_name else care.texts.get("room_name", locale, practitioner=pair.practitioner.display_name),
            topic=care.texts.get("topic", locale),
            room_version=self._room_version,
        )
        async with self._creations:
            room_id = await create_room(self._client, body, "room.create_failed", pair=f"{pair.patient.id}/{pair.practitioner.id}")
        # The slot is free for the next room while this one is recorded. A crash before the
        # record is made loses nothing: the room is found again from its `carebot.pair` state.
        if room_id is None:
            return
        disclaimer = notice(care.texts.get("disclaimer", locale), extra={"carebot.disclaimer": True})
        disclaimer[TO] = [pair.patient.matrix_id, pair.practitioner.matrix_id]
        disclaimer[PIN] = True
        async with self._store.transaction():
            await self._store.save_room(room_id, pair.patient.id, pair.practitioner.id)
            # Posted when a member joins (see Membership.release_banner).
            await self._store.save_pending_banner(room_id, FIRST_MEMBER, disclaimer)
            await self._store.audit("bot", "room.created", room_id, {"patient": pair.patient.id, "practitioner": pair.practitioner.id}, care.policy_hash)
        self._state.seen_pairs[room_id] = (pair.patient.id, pair.practitioner.id)
        self._wake()
        log.info("room.created", room_id=room_id, pair=f"{pair.patient.id}/{pair.practitioner.id}")

    async def _ensure_members(self, room_id: str, pair: Pair, pending: set[tuple[str, str]]) -> None:
        """Invite again a member who left or rejected the invite; never a second room."""
        for mxid in (pair.patient.matrix_id, pair.practitioner.matrix_id):
            if (room_id, mxid) not in pending:
                continue
            resp = await self._client.room_invite(room_id, mxid)
            if getattr(resp, "status_code", None) is None or "already" in str(getattr(resp, "message", "")):
                async with self._store.transaction():
                    await self._store.reinvited(room_id, mxid)
                log.info("room.reinvited", room_id=room_id, pair=f"{pair.patient.id}/{pair.practitioner.id}")

    async def _set_power_levels(self, room_id: str, change: Callable[[dict], dict]) -> None:
        """Read, change and write the room's power levels; raise if the server refuses (the
        reconciliation is then retried, and the room's state in the database is unchanged)."""
        resp = await self._client.room_get_state_event(room_id, POWER_LEVELS)
        if not isinstance(resp, RoomGetStateEventResponse):
            raise RuntimeError(f"power levels of {room_id} could not be read")
        wanted = change(resp.content)
        if wanted == resp.content:
            return  # already so: no new state event
        put = await self._client.room_put_state(room_id, POWER_LEVELS, wanted)
        if not isinstance(put, RoomPutStateResponse):
            raise RuntimeError(f"power levels of {room_id} could not be written")

    async def _close_room(self, record: RoomRecord) -> None:
        """The pair left the roster: the room becomes read-only for both (history kept), its
        pending requests are cancelled and the patient told, and the closing notice, with the
        emergency numbers, goes out at once."""
        care = self._state.care
        await self._set_power_levels(record.room_id, closed_power_levels)
        self._sealed.add(record.room_id)
        patient = care.roster.patient(record.patient_id)
        locales = (care.locale_for_mxid(patient.matrix_id),) if patient else ("fr", "en")
        text = "\n\n".join(care.texts.get("channel_closed", loc) for loc in ("fr", "en"))
        content = notice(text)
        content[TO] = None  # whoever is still in the room
        closed_at = str(time.time())
        async with self._store.transaction():
            await self._store.set_room_state(record.room_id, "closed")
            for req in await self._store.requests_in_room(record.room_id, "pending"):
                if not await self._store.decide(req.id, "cancelled", None, "admin"):
                    continue
                rid = format_id(req.id)
                told = "\n\n".join(care.texts.get("renewal_cancelled_closed", loc, id=rid, medication=req.medication) for loc in locales)
                cancelled = notice(told, extra=renewal_meta(rid, "cancelled", req.medication))
                cancelled[TO] = None
                await self._store.enqueue(txn_for("closed", record.room_id, rid, closed_at), record.room_id, cancelled)
                await self._store.audit("admin", "renewal.cancelled", rid, {"by": "room.closed"}, care.policy_hash)
            await self._store.enqueue(txn_for("closed", record.room_id, closed_at), record.room_id, content)
            await self._store.audit("admin", "room.closed", record.room_id, {"patient": record.patient_id, "practitioner": record.practitioner_id})
        self._wake()
        log.info("room.closed", room_id=record.room_id)

    async def _reopen_room(self, record: RoomRecord, pair: Pair) -> None:
        """The pair is back: the room is restored as it was (power levels back, members
        invited again if they left)."""
        await self._set_power_levels(record.room_id, open_power_levels)
        self._sealed.discard(record.room_id)
        async with self._store.transaction():
            await self._store.set_room_state(record.room_id, "active")
            await self._store.audit("admin", "room.reopened", record.room_id, {"patient": record.patient_id, "practitioner": record.practitioner_id})
            for mxid in (pair.patient.matrix_id, pair.practitioner.matrix_id):
                await self._store.need_reinvite(record.room_id, mxid)  # done at once if still there
        both = {(record.room_id, m) for m in (pair.patient.matrix_id, pair.practitioner.matrix_id)}
        await self._ensure_members(record.room_id, pair, both)
        log.info("room.reopened", room_id=record.room_id)
