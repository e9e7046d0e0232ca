"""The running bot: wires the store, the care domain and the Matrix connection.

Flow of one sync batch: invites are answered, `carebot.pair` state is noted (so rooms are found
again if the database is lost), membership in pair rooms is checked (intruders removed), then
each new message is handled in one database transaction that records the request, queues the
replies in the outbox and marks the event handled. The sync token is saved after the batch.
The outbox is then sent with fixed transaction ids, so a crash anywhere repeats nothing and
loses nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from nio import (
    AsyncClient,
    InviteMemberEvent,
    MegolmEvent,
    RoomCreateEvent,
    RoomCreateResponse,
    RoomMemberEvent,
    RoomMessageText,
    RoomPutStateResponse,
    SyncResponse,
    UnknownEvent,
)
from nio.api import Api

from bot.care.service import CareContext, CareService, Reply
from bot.config import Config
from bot.faults import crash_point
from bot.matrix import crypto as xsign
from bot.matrix.client import (
    SYNC_TOKEN_KEY,
    Backoff,
    StartupError,
    SyncLoop,
    connect,
    missed_events,
    send_encrypted,
)
from bot.matrix.messages import notice, renewal_meta
from bot.matrix.rooms import PAIR_STATE, create_room_body
from bot.matrix.trust import DeviceTrust
from bot.store import RoomRecord, Store

log = structlog.get_logger("carebot")

# Internal outbox keys, stripped before sending.
_TO = "_carebot_to"
_PIN = "_carebot_pin"
_LEAVE = "_carebot_leave_after"
OUTBOX_PARALLEL_ROOMS = 8

SYNC_FILTER: dict[str, Any] = {
    "room": {
        "state": {"lazy_load_members": True},
        "timeline": {"limit": 100, "lazy_load_members": True},
        "ephemeral": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
    },
    "presence": {"not_types": ["*"]},
    "account_data": {"not_types": ["*"]},
}


def txn_for(*parts: str) -> str:
    """A transaction id derived from what caused the message: the same cause, the same id."""
    return "cb" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


@dataclass
class _State:
    care: CareContext
    seen_pairs: dict[str, tuple[str, str]] = field(default_factory=dict)
    file_stamp: tuple[float, ...] = ()


class CareBot:
    def __init__(self, config: Config, password: Callable[[], str]) -> None:
        self.config = config
        self.password = password
        self.store: Store | None = None
        self.client: AsyncClient | None = None
        self.service: CareService | None = None
        self.state: _State | None = None
        self.ready = asyncio.Event()
        self.sync_loop: SyncLoop | None = None
        self.trust: DeviceTrust | None = None
        self._warned: set[tuple[str, str, str]] = set()
        self._wake_outbox = asyncio.Event()
        self._reconcile_lock = asyncio.Lock()
        self._reload_requested = asyncio.Event()
        self._room_version = "12"
        self._reconcile_needed = False

    # -- start-up ------------------------------------------------------------------------
    @property
    def storage(self) -> Path:
        return Path(self.config.storage.path)

    async def run(self, stop: asyncio.Event) -> None:
        care = CareContext.load(self.config)  # raises ConfigErrors on a broken roster/policy
        self.state = _State(care=care, file_stamp=CareContext.stamp(self.config))
        self.storage.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.store = await Store.open(self.storage / "carebot.db")
        try:
            self.service = CareService(self.store)
            self.client = await connect(
                self.config.homeserver.url,
                self.config.bot.user_id,
                self.password,
                self.config.bot.device_name,
                self.storage,
            )
            self.trust = DeviceTrust(self.client, self.config.trust)
            try:
                await self._setup_identity()
                await self._main(stop)
            finally:
                await self.client.close()
        finally:
            await self.store.close()

    async def _setup_identity(self) -> None:
        assert self.client is not None
        status = await xsign.ensure_cross_signing(self.client, self.password(), self.storage)
        if status.recovery_key_path:
            log.warning(
                "identity.created",
                recovery_key_file=str(status.recovery_key_path),
                advice="copy this recovery key somewhere safe and offline, then delete the file",
            )
        log.info("identity.ready", device_signed=status.device_signed)
        caps = await self.client.send(
            "GET", Api._build_path(["capabilities"]),  # noqa: SLF001
            headers={"Authorization": f"Bearer {self.client.access_token}"},
        )
        try:
            body = await caps.json()
            self._room_version = str(body["capabilities"]["m.room_versions"]["default"])
        except Exception:  # noqa: BLE001 - an old server without capabilities: be conservative
            self._room_version = "10"

    async def _main(self, stop: asyncio.Event) -> None:
        assert self.store is not None and self.client is not None
        store = self.store
        self.sync_loop = loop = SyncLoop(
            self.client,
            get_token=lambda: store.get(SYNC_TOKEN_KEY),
            save_token=lambda token: store.set(SYNC_TOKEN_KEY, token),
            handler=self._on_sync,
            timeout_ms=self.config.sync.timeout_ms,
            backoff=Backoff(cap=self.config.sync.backoff_max_s),
            sync_filter=SYNC_FILTER,
        )
        tasks = [
            asyncio.create_task(loop.run(stop), name="sync"),
            asyncio.create_task(self._outbox_loop(stop), name="outbox"),
            asyncio.create_task(self._watch_files(stop), name="watch"),
            asyncio.create_task(self._housekeeping_loop(stop), name="housekeeping"),
        ]
        try:
            synced = asyncio.create_task(loop.synced.wait())
            await asyncio.wait([synced, tasks[0]], return_when=asyncio.FIRST_COMPLETED)
            if not synced.done():
                synced.cancel()
                tasks[0].result()  # the sync task ended before the first sync: raise why
                return
            await self._reconcile_or_retry_later()
            self.ready.set()
            log.info("carebot.ready", rooms=len(await store.rooms()))
            done, _ = await asyncio.wait(
                tasks + [asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            stop.set()
            self._wake_outbox.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _reconcile_or_retry_later(self) -> None:
        """Reconcile; if the homeserver fails us half-way, housekeeping tries again soon."""
        try:
            await self.reconcile()
            self._reconcile_needed = False
        except Exception as e:  # noqa: BLE001 - rooms are made idempotently: a retry is safe
            self._reconcile_needed = True
            log.warning("rooms.reconcile_failed", error=type(e).__name__)

    def request_reload(self) -> None:
        self._reload_requested.set()

    # -- sync handling -------------------------------------------------------------------
    async def _on_sync(self, resp: SyncResponse, initial: bool) -> None:
        assert self.state is not None and self.trust is not None
        self.trust.invalidate(resp.device_list.changed)
        for room_id, info in resp.rooms.invite.items():
            await self._on_invite(room_id, info.invite_state)
        for room_id, info in resp.rooms.join.items():
            for event in list(info.state) + list(info.timeline.events):
                if isinstance(event, UnknownEvent) and event.type == PAIR_STATE:
                    content = event.source.get("content", {})
                    if event.sender == self.client.user_id and {"patient", "practitioner"} <= set(content):  # type: ignore[union-attr]
                        self.state.seen_pairs[room_id] = (content["patient"], content["practitioner"])
            if initial:
                continue  # events from before the bot existed are history, not requests
            events = list(info.timeline.events)
            since = self.sync_loop.since if self.sync_loop else None
            new_room = any(isinstance(e, RoomCreateEvent) for e in list(info.state) + events)
            if info.timeline.limited and since and info.timeline.prev_batch and not new_room:
                # A gap (long outage, busy room): fetch what the sync left out. If this
                # fails, the batch fails and is retried from the same token: nothing lost.
                events = await missed_events(self.client, room_id, info.timeline.prev_batch, since) + events  # type: ignore[arg-type]
                log.info("sync.gap_filled", room_id=room_id, events=len(events))
            for event in events:
                try:
                    await self._on_event(room_id, event)
                except Exception:  # noqa: BLE001 - one bad event must not stop the bot
                    log.exception("event.failed", room_id=room_id, event_id=getattr(event, "event_id", None))
        self._wake_outbox.set()

    async def _on_invite(self, room_id: str, invite_state: list[Any]) -> None:
        assert self.client is not None and self.state is not None
        inviter = None
        for event in invite_state:
            if isinstance(event, InviteMemberEvent) and event.state_key == self.client.user_id:
                inviter = event.sender
        roster = self.state.care.roster
        if inviter is None or not roster.is_known(inviter):
            await self.client.room_leave(room_id)
            log.info("invite.declined", room_id=room_id, reason="stranger")
            return
        # A roster member inviting the bot to a room of their own: explain where to write.
        join = await self.client.join(room_id)
        if getattr(join, "room_id", None) is None:
            return
        locale = self.state.care.locale_for_mxid(inviter)
        if roster.verified_pairs_for_mxid(inviter):
            text = self.state.care.texts.get("use_your_channel", locale)
        else:  # in the roster, but no practitioner of theirs offers messaging
            text = self.state.care.texts.get("stranger_refusal", locale)
        assert self.store is not None
        async with self.store.transaction():
            await self.store.enqueue(
                txn_for("invite", room_id),
                room_id,
                {**notice(text), _TO: [inviter], _LEAVE: True},
            )
        log.info("invite.explained", room_id=room_id)

    async def _on_event(self, room_id: str, event: Any) -> None:
        assert self.client is not None and self.store is not None and self.state is not None
        if getattr(event, "sender", None) == self.client.user_id:
            return
        record = await self.store.room(room_id)
        if record is None:
            return  # not a pair room: the bot says nothing there
        pair = self.state.care.roster.pair(record.patient_id, record.practitioner_id)
        if isinstance(event, RoomMemberEvent):
            await self._on_member(record, pair, event)
            return
        if record.state != "active" or pair is None or not pair.verified:
            return
        if isinstance(event, MegolmEvent):
            await self._on_undecryptable(record, event)
            return
        if not isinstance(event, RoomMessageText):
            return
        if event.sender == pair.patient.matrix_id:
            role = "patient"
        elif event.sender == pair.practitioner.matrix_id:
            role = "practitioner"
        else:
            return
        async with self.store.transaction():
            if await self.store.is_processed(event.event_id):
                return
            assert self.service is not None
            replies = await self.service.handle_message(
                self.state.care, pair, role, event.body, event.event_id, room_id
            )
            for n, reply in enumerate(replies):
                await self.store.enqueue(
                    txn_for(event.event_id, str(n)), room_id, self._content(reply, pair, event.event_id)
                )
            await self.store.mark_processed(event.event_id, room_id)
        crash_point("after_commit")
        self._wake_outbox.set()  # start sending while the rest of the batch is handled

    def _content(self, reply: Reply, pair: Any, reply_to: str | None) -> dict[str, Any]:
        addressed = None
        if reply.for_practitioner is not None:
            addressed = (pair.practitioner.matrix_id, pair.practitioner.display_name, reply.for_practitioner)
        extra: dict[str, Any] = {}
        if reply.renewal is not None:
            extra.update(renewal_meta(*reply.renewal))
        if reply.emergency:
            extra["carebot.emergency"] = True
        if reply.disclaimer:
            extra["carebot.disclaimer"] = True
        content = notice(reply.text, reply_to=reply_to, addressed=addressed, extra=extra)
        content[_TO] = [pair.patient.matrix_id, pair.practitioner.matrix_id]
        return content

    async def _on_member(self, record: RoomRecord, pair: Any, event: RoomMemberEvent) -> None:
        assert self.client is not None and self.store is not None and self.state is not None
        member = event.state_key
        allowed = {self.client.user_id}
        if pair is not None:
            allowed |= {pair.patient.matrix_id, pair.practitioner.matrix_id}
        if member in allowed and member != self.client.user_id:
            if event.membership == "join" and pair is not None:
                await self._release_disclaimer(record.room_id, by_patient=member == pair.patient.matrix_id)
            if event.membership == "leave":
                # Left or rejected the invite: the room is kept and they are invited again at
                # the next reconciliation (start or roster reload). Never a second room.
                async with self.store.transaction():
                    await self.store.need_reinvite(record.room_id, member)
                    await self.store.audit("bot", "room.member_left", record.room_id)
            return
        if event.membership not in ("join", "invite"):
            return
        await self.client.room_kick(record.room_id, member, reason="carebot: private channel")
        log.warning("room.intruder_removed", room_id=record.room_id, pair=f"{record.patient_id}/{record.practitioner_id}")
        if pair is None:
            return
        async with self.store.transaction():
            if await self.store.is_processed(event.event_id):
                return
            locale = self.state.care.locale_of(pair, pair.practitioner.matrix_id)
            text = self.state.care.texts.get("intruder_removed", locale, user=member)
            content = notice(text, mentions=[(pair.practitioner.matrix_id, pair.practitioner.display_name)])
            content[_TO] = [pair.patient.matrix_id, pair.practitioner.matrix_id]
            await self.store.enqueue(txn_for(event.event_id, "intruder"), record.room_id, content)
            await self.store.audit("bot", "room.intruder_removed", record.room_id)
            await self.store.mark_processed(event.event_id, record.room_id)

    async def _on_undecryptable(self, record: RoomRecord, event: MegolmEvent) -> None:
        """Ask for the missing key and wait for it; the sender is told only if it never comes."""
        assert self.client is not None and self.store is not None
        if await self.store.is_processed(event.event_id):
            return
        try:
            await self.client.request_room_key(event)
        except Exception:  # noqa: BLE001 - a request already in flight is fine
            pass
        deadline = time.time() + self.config.limits.undecryptable_wait_s
        async with self.store.transaction():
            await self.store.add_undecryptable(event.event_id, record.room_id, deadline, event.source)
        log.info("message.key_requested", room_id=record.room_id, event_id=event.event_id)

    async def _retry_undecryptable(self) -> None:
        """Try again the events that could not be decrypted; give up politely at the deadline."""
        assert self.client is not None and self.store is not None and self.state is not None
        for pending in await self.store.undecryptables():
            event = MegolmEvent.from_dict(pending.source)
            room_id = pending.room_id
            event.room_id = room_id
            try:
                decrypted = self.client.decrypt_event(event)
            except Exception:  # noqa: BLE001 - still no key
                decrypted = None
            if decrypted is not None and not isinstance(decrypted, RoomMessageText):
                async with self.store.transaction():
                    await self.store.drop_undecryptable(pending.event_id)  # an image or a file: nothing to answer
                continue
            if isinstance(decrypted, RoomMessageText):
                async with self.store.transaction():
                    await self.store.drop_undecryptable(pending.event_id)
                log.info("message.decrypted_late", room_id=room_id, event_id=event.event_id)
                await self._on_event(room_id, decrypted)
                continue
            if time.time() < pending.deadline:
                continue
            record = await self.store.room(room_id)
            pair = self.state.care.roster.pair(record.patient_id, record.practitioner_id) if record else None
            async with self.store.transaction():
                await self.store.drop_undecryptable(pending.event_id)
                if pair is None or await self.store.is_processed(event.event_id):
                    continue
                locale = self.state.care.locale_of(pair, event.sender)
                content = notice(self.state.care.texts.get("undecryptable", locale), reply_to=event.event_id)
                content[_TO] = [pair.patient.matrix_id, pair.practitioner.matrix_id]
                await self.store.enqueue(txn_for(event.event_id, "utd"), room_id, content)
                await self.store.mark_processed(event.event_id, room_id)
            log.warning("message.undecryptable", room_id=room_id, event_id=event.event_id)
            self._wake_outbox.set()

    async def _housekeeping_loop(self, stop: asyncio.Event) -> None:
        """Late keys, and the retention of decided requests."""
        assert self.store is not None
        last_purge = 0.0
        while not stop.is_set():
            try:
                if self._reconcile_needed:
                    await self._reconcile_or_retry_later()
                await self._retry_undecryptable()
                days = self.config.retention_days
                if days and time.time() - last_purge > 3600:
                    last_purge = time.time()
                    async with self.store.transaction():
                        purged = await self.store.purge_decided(days)
                        if purged:
                            await self.store.audit("bot", "retention.purged", None, {"requests": purged, "days": days})
                    if purged:
                        log.info("retention.purged", requests=purged)
            except Exception:  # noqa: BLE001 - housekeeping must not stop the bot
                log.exception("housekeeping.failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=2.0)
            except asyncio.TimeoutError:
                pass

    # -- outbox --------------------------------------------------------------------------
    async def _outbox_loop(self, stop: asyncio.Event) -> None:
        """Send queued replies: rooms in parallel, each room's messages in order.

        What fails stays queued, in place, and is retried with backoff.
        """
        assert self.store is not None
        failures = 0
        sem = asyncio.Semaphore(OUTBOX_PARALLEL_ROOMS)

        async def drain(items: list[Any]) -> bool:
            async with sem:
                for item in items:
                    try:
                        event_id = await self._send_item(item)
                    except Exception as e:  # noqa: BLE001 - network trouble: keep it for later
                        log.warning("outbox.send_error", room_id=item.room_id, error=type(e).__name__)
                        event_id = None
                    if event_id is None:
                        return False  # later messages of this room wait for this one
                    async with self.store.transaction():  # type: ignore[union-attr]
                        await self.store.sent(item.id)  # type: ignore[union-attr]
                    log.info("outbox.sent", room_id=item.room_id, event_id=event_id)
                return True

        while not stop.is_set():
            self._wake_outbox.clear()
            by_room: dict[str, list[Any]] = {}
            for item in await self.store.outbox(limit=500):
                by_room.setdefault(item.room_id, []).append(item)
            results = await asyncio.gather(*(drain(items) for items in by_room.values()))
            if not all(results):
                failures += 1
                delay = Backoff(base=0.5, cap=10).delay(failures)
            else:
                failures = 0
                delay = 0.0 if len(by_room) and sum(map(len, by_room.values())) >= 500 else 30.0
            try:
                await asyncio.wait_for(self._wake_outbox.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass

    async def _send_item(self, item: Any) -> str | None:
        """Send one outbox item (and its pin or leave); the event id once all of it is done."""
        assert self.client is not None and self.trust is not None
        content = dict(item.content)
        to = content.pop(_TO, None)
        if to is None:
            room = self.client.rooms.get(item.room_id)
            to = list(room.users) if room is not None else []
        pin = content.pop(_PIN, False)
        leave = content.pop(_LEAVE, False)
        unsigned = await self.trust.prepare(set(to) | {self.client.user_id})
        event_id = await send_encrypted(
            self.client,
            item.room_id,
            content,
            item.txn_id,
            to,
            ignore_unverified=self.config.trust == "tofu",
            event_type=item.event_type,
            require_encryption=not leave,  # only the short explanation in a stranger's DM may be clear
        )
        if event_id is None:
            return None
        await self.trust.send_withheld(item.room_id, unsigned)
        await self._warn_unsigned(item.room_id, unsigned)
        crash_point("after_send")
        if pin:
            resp = await self.client.room_put_state(
                item.room_id, "m.room.pinned_events", {"pinned": [event_id]}
            )
            if not isinstance(resp, RoomPutStateResponse):
                return None  # sent again later with the same transaction id, then pinned
        if leave:
            await self.client.room_leave(item.room_id)
        return event_id

    async def _warn_unsigned(self, room_id: str, unsigned: dict[str, list[str]]) -> None:
        """Tell the practitioner, once per device, that a member's device is not cross-signed."""
        assert self.store is not None and self.state is not None and self.client is not None
        if not unsigned:
            return
        record = await self.store.room(room_id)
        if record is None:
            return
        care = self.state.care
        pair = care.roster.pair(record.patient_id, record.practitioner_id)
        if pair is None:
            return
        for mxid, devices in unsigned.items():
            if mxid == self.client.user_id:
                continue
            name = pair.patient.display_name if mxid == pair.patient.matrix_id else pair.practitioner.display_name
            for device_id in devices:
                key = (room_id, mxid, device_id)
                if key in self._warned:
                    continue
                self._warned.add(key)
                async with self.store.transaction():
                    if await self.store.was_warned(*key):
                        continue
                    await self.store.mark_warned(*key)
                    text = care.texts.get(
                        "unsigned_device_" + self.config.trust.replace("-", "_"),
                        care.locale_of(pair, pair.practitioner.matrix_id),
                        who=name,
                    )
                    content = notice(text, mentions=[(pair.practitioner.matrix_id, pair.practitioner.display_name)])
                    content[_TO] = [pair.patient.matrix_id, pair.practitioner.matrix_id]
                    await self.store.enqueue(txn_for("unsigned", room_id, mxid, device_id), room_id, content)
                log.info("trust.unsigned_device", room_id=room_id, pair=f"{record.patient_id}/{record.practitioner_id}")
        self._wake_outbox.set()

    # -- roster and policies ---------------------------------------------------------------
    async def _watch_files(self, stop: asyncio.Event) -> None:
        assert self.state is not None
        while not stop.is_set():
            try:
                await asyncio.wait_for(self._reload_requested.wait(), timeout=2.0)
            except asyncio.TimeoutError:
                pass
            stamp = CareContext.stamp(self.config)
            if not self._reload_requested.is_set() and stamp == self.state.file_stamp:
                continue
            self._reload_requested.clear()
            self.state.file_stamp = stamp
            await self.reload()

    async def reload(self) -> bool:
        """Load roster and policies again; an invalid file keeps what is in force."""
        assert self.state is not None and self.store is not None
        from bot.yamlutil import ConfigErrors

        try:
            care = CareContext.load(self.config)
        except ConfigErrors as e:
            for err in e.errors:
                log.error("config.reload_rejected", file=str(err.file), line=err.line, key=err.key, problem=err.message)
            async with self.store.transaction():
                await self.store.audit("admin", "config.reload_rejected", None, {"errors": len(e.errors)})
            return False
        self.state.care = care
        async with self.store.transaction():
            await self.store.audit("admin", "config.reloaded", None, {"pairs": len(care.roster.verified_pairs())}, care.policy_hash)
        log.info("config.reloaded", pairs=len(care.roster.verified_pairs()))
        await self._reconcile_or_retry_later()
        return True

    # -- rooms -----------------------------------------------------------------------------
    async def reconcile(self) -> None:
        """Exactly one active room per verified pair; rooms of removed pairs are closed."""
        assert self.store is not None and self.client is not None and self.state is not None
        async with self._reconcile_lock:
            care = self.state.care
            wanted = {(p.patient.id, p.practitioner.id): p for p in care.roster.verified_pairs()}
            known = {(r.patient_id, r.practitioner_id): r for r in await self.store.rooms()}
            # Rooms found from their carebot.pair state but missing in the database.
            joined: set[str] = set()
            if any(k not in known and k not in self.state.seen_pairs.values() for k in wanted):
                joined = await self._pairs_from_server({r.room_id for r in known.values()})
            for room_id, key in self.state.seen_pairs.items():
                if key not in known and (room_id in self.client.rooms or room_id in joined):
                    async with self.store.transaction():
                        await self.store.save_room(room_id, *key, state="active" if key in wanted else "closed")
                    known[key] = RoomRecord(room_id, key[0], key[1], "active" if key in wanted else "closed")
                    log.info("room.adopted", room_id=room_id, pair=f"{key[0]}/{key[1]}")
            sem = asyncio.Semaphore(self.config.rooms.max_concurrent_creations)

            async def provision(key: tuple[str, str], pair: Any) -> None:
                async with sem:
                    record = known.get(key)
                    if record is None:
                        await self._create_room(pair)
                    else:
                        if record.state != "active":
                            async with self.store.transaction():  # type: ignore[union-attr]
                                await self.store.set_room_state(record.room_id, "active")  # type: ignore[union-attr]
                        await self._ensure_members(record.room_id, pair)

            await asyncio.gather(*(provision(k, p) for k, p in wanted.items()))
            for key, record in known.items():
                if key not in wanted and record.state == "active":
                    await self._close_room(record)

    async def _pairs_from_server(self, known_rooms: set[str]) -> set[str]:
        """Ask the server (not the sync, which Synapse may answer from its response cache
        after a lost database) which joined rooms carry our `carebot.pair` state."""
        assert self.client is not None and self.state is not None
        resp = await self.client.joined_rooms()
        rooms = set(getattr(resp, "rooms", None) or ())
        for room_id in rooms - known_rooms - set(self.state.seen_pairs):
            state = await self.client.room_get_state(room_id)
            for ev in getattr(state, "events", None) or ():
                content = ev.get("content", {})
                if (ev.get("type") == PAIR_STATE and ev.get("state_key") == "" and ev.get("sender") == self.client.user_id
                        and {"patient", "practitioner"} <= set(content)):
                    self.state.seen_pairs[room_id] = (content["patient"], content["practitioner"])
        return rooms

    async def _create_room(self, pair: Any) -> None:
        assert self.client is not None and self.store is not None and self.state is not None
        care = self.state.care
        locale = care.locale_of(pair, pair.patient.matrix_id)
        body = create_room_body(
            bot=self.client.user_id,
            patient_mxid=pair.patient.matrix_id,
            practitioner_mxid=pair.practitioner.matrix_id,
            patient_id=pair.patient.id,
            practitioner_id=pair.practitioner.id,
            name=care.texts.get("room_name", locale, practitioner=pair.practitioner.display_name),
            topic=care.texts.get("topic", locale),
            room_version=self._room_version,
        )
        resp = await self.client._send(  # noqa: SLF001 - nio's room_create lacks creation_content keys we need
            RoomCreateResponse,
            "POST",
            Api._build_path(["createRoom"], {"access_token": self.client.access_token}),  # noqa: SLF001
            Api.to_json(body),
        )
        if not isinstance(resp, RoomCreateResponse):
            log.error("room.create_failed", pair=f"{pair.patient.id}/{pair.practitioner.id}", status=getattr(resp, "status_code", None))
            return
        room_id = resp.room_id
        disclaimer = notice(care.texts.get("disclaimer", locale), extra={"carebot.disclaimer": True})
        disclaimer[_TO] = [pair.patient.matrix_id, pair.practitioner.matrix_id]
        disclaimer[_PIN] = True
        async with self.store.transaction():
            await self.store.save_room(room_id, pair.patient.id, pair.practitioner.id)
            # Posted when a member joins (see _release_disclaimer).
            await self.store.save_pending_banner(room_id, "first_member", disclaimer)
            await self.store.audit("bot", "room.created", room_id, {"patient": pair.patient.id, "practitioner": pair.practitioner.id}, care.policy_hash)
        self.state.seen_pairs[room_id] = (pair.patient.id, pair.practitioner.id)
        self._wake_outbox.set()
        log.info("room.created", room_id=room_id, pair=f"{pair.patient.id}/{pair.practitioner.id}")

    async def _release_disclaimer(self, room_id: str, by_patient: bool) -> None:
        """Post the banner when the first member joins; again for a patient who joins later.

        A client only shows an encrypted message in Element's "exclude insecure devices" mode
        if it knew the sender's device when it first tried to decrypt it, and it learns the
        bot's device when it joins. So the banner goes out at the first join (still the
        room's first message: nobody writes before joining), and if the practitioner was
        first, a copy is posted — and pinned — when the patient arrives.
        """
        assert self.store is not None
        async with self.store.transaction():
            pending = await self.store.pending_banner(room_id, "first_member")
            if pending is not None:
                await self.store.enqueue(txn_for("disclaimer", room_id), room_id, pending)
                await self.store.drop_pending_banner(room_id, "first_member")
                if not by_patient:
                    await self.store.save_pending_banner(room_id, "patient", pending)
            elif by_patient:
                again = await self.store.pending_banner(room_id, "patient")
                if again is None:
                    return
                await self.store.enqueue(txn_for("disclaimer-patient", room_id), room_id, again)
                await self.store.drop_pending_banner(room_id, "patient")
            else:
                return
        self._wake_outbox.set()

    async def _ensure_members(self, room_id: str, pair: Any) -> None:
        """Invite again a member who left or rejected the invite; never a second room."""
        assert self.client is not None and self.store is not None
        for mxid in (pair.patient.matrix_id, pair.practitioner.matrix_id):
            if not await self.store.needs_reinvite(room_id, mxid):
                continue
            resp = await self.client.room_invite(room_id, mxid)
            if getattr(resp, "status_code", None) is None or "already" in str(getattr(resp, "message", "")):
                async with self.store.transaction():
                    await self.store.reinvited(room_id, mxid)
                log.info("room.reinvited", room_id=room_id, pair=f"{pair.patient.id}/{pair.practitioner.id}")

    async def _close_room(self, record: RoomRecord) -> None:
        assert self.store is not None and self.state is not None
        care = self.state.care
        text = "\n\n".join(care.texts.get("channel_closed", loc) for loc in ("fr", "en"))
        content = notice(text)
        content[_TO] = None  # whoever is still in the room
        async with self.store.transaction():
            await self.store.set_room_state(record.room_id, "closed")
            await self.store.enqueue(txn_for("closed", record.room_id, str(time.time())), record.room_id, content)
            await self.store.audit("admin", "room.closed", record.room_id, {"patient": record.patient_id, "practitioner": record.practitioner_id})
        log.info("room.closed", room_id=record.room_id)


def install_signal_handlers(bot: CareBot, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, bot.request_reload)


__all__ = ["CareBot", "StartupError", "install_signal_handlers"]
