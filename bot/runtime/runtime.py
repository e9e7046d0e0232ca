"""The running bot: start-up, identity, wiring of the components, run until stopped.

Flow of one sync batch (see router.py): invites are answered, `carebot.pair` state is noted (so
rooms are found again if the database is lost), membership in pair rooms is checked (intruders
removed), then each new message is handled in one database transaction that records the
request, queues the replies in the outbox and marks the event handled. The sync token is saved
after the batch. The outbox is then sent with fixed transaction ids, so a crash anywhere
repeats nothing and loses nothing.

`CareBot` only holds the configuration until `run()`: the components are built together once
the store is open and the connection and identity exist, and live as long as the run.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from nio import AsyncClient

from bot.care.service import CareContext, CareService
from bot.config import Config
from bot.matrix import crypto as xsign
from bot.matrix import nio_private
from bot.matrix.client import SYNC_TOKEN_KEY, Backoff, connect
from bot.matrix.sender_trust import SenderTrustCheck
from bot.matrix.sync import SyncHandler, SyncLoop
from bot.matrix.trust import DeviceTrust
from bot.runtime.bridge import Bridge, attach_bridge, bridge_roster, open_bridge
from bot.runtime.conversation import Conversation
from bot.desk.clock import DeskClock
from bot.runtime.desk_wiring import desk_parts, device_display_name
from bot.runtime.device_warnings import DeviceWarnings
from bot.runtime.housekeeping import Housekeeping
from bot.runtime.identities import IdentityPins
from bot.runtime.invites import Invites
from bot.runtime.membership import Membership
from bot.runtime.mentions import MentionThrottle
from bot.runtime.operations import Operations, claim_practitioners
from bot.runtime.outbox import Outbox
from bot.runtime.practitioner_notice import PractitionerNotices
from bot.runtime.redactions import Redactions
from bot.runtime.reconcile import Reconciler
from bot.runtime.reload import Reloader
from bot.runtime.router import Router
from bot.runtime.shared import LiveState
from bot.runtime.trust_gate import TrustGate
from bot.runtime.undecryptable import UndecryptableMessages
from bot.store import Store

log = structlog.get_logger("carebot")

OUTBOX_STOP_GRACE_S = 10.0

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


@dataclass(frozen=True)
class Running:
    """The components of one run, all built at once."""

    store: Store
    client: AsyncClient
    sync_loop: SyncLoop
    outbox: Outbox
    reconciler: Reconciler
    reloader: Reloader
    housekeeping: Housekeeping
    trust: DeviceTrust
    pins: IdentityPins
    ops: Operations
    bridge: Bridge | None = None
    desk_clock: DeskClock | None = None  # what the desk's digest, reminders and absences read


def assemble(
    config: Config, store: Store, client: AsyncClient, state: LiveState, room_version: str,
    reload_requested: asyncio.Event, ops: Operations, bridge: Bridge | None = None,
) -> Running:
    """Wire the components. Each gets only what it uses."""
    service = CareService(store)
    desk = desk_parts(config, store, client, state, service, room_version, wake=lambda: outbox.wake())
    notices = PractitionerNotices(store, desk=desk.desks.notify if desk else None)  # to the desk when there is one
    pins = IdentityPins(store, state, config.trust, lambda: outbox.wake(), notices)
    trust = DeviceTrust(client, config.trust, pins)
    warnings = DeviceWarnings(
        store, state, client.user_id, config.trust, notices,
        desks=desk.desks if desk else None, device_name=lambda user, device: device_display_name(client, user, device),
    )
    outbox = Outbox(client, store, trust, tofu=config.trust == "tofu", on_unsigned=warnings.warn)
    wake = outbox.wake
    reconciler = Reconciler(
        client, store, state, room_version=room_version,
        max_concurrent_creations=config.rooms.max_concurrent_creations, wake=wake,
        room_name=desk.keeper.room_name if desk else None,
        before=desk.keeper.ensure_desks if desk else None,
        then=desk.keeper.reconcile if desk else None,
        note_state=desk.keeper.note_server_state if desk else None,
        on_reconciled=ops.reconciled,
    )
    undecryptable = UndecryptableMessages(client, store, state, config.limits.undecryptable_wait_s, wake)
    mentions = MentionThrottle()  # one emergency mention per room per window, whoever sends the notice
    gate = TrustGate(store, state, SenderTrustCheck(client, trust, store.is_owner_forwarded), wake, notices, mentions)
    if desk:
        desk.room.attach(gate, undecryptable, bridge)
    router = Router(
        client, store, state,
        on_invite=Invites(client, store, state, wake).on_invite,
        on_device_changes=trust.invalidate,
        handlers=[
            Membership(client, store, state, wake),
            undecryptable,
            Conversation(store, service, state, wake, mentions=mentions, gate=gate, bridge=bridge, on_command=ops.command, relay=desk.relay if desk else None),
            Redactions(client, store, state, wake, bridge=bridge),
        ],
        wake=wake,
        note_state=desk.keeper.note_state if desk else None,
        other_rooms=desk.room.handle if desk else None,
        gap_without_paging=desk.room.space_gap if desk else None,
    )
    sync_loop = SyncLoop(
        client,
        get_token=lambda: store.get(SYNC_TOKEN_KEY),
        save_token=lambda token: store.set(SYNC_TOKEN_KEY, token),
        handler=_metered(router.on_sync, ops),
        timeout_ms=config.sync.timeout_ms,
        backoff=Backoff(cap=config.sync.backoff_max_s),
        sync_filter=SYNC_FILTER,
        settle=outbox.settled,
    )

    async def claims_still_hold(care: CareContext) -> None:
        await claim_practitioners(config, store, care)

    reloader = Reloader(
        config, state, store, reload_requested, reconciler.reconcile_or_retry_later, bridge_roster(bridge),
        accept=claims_still_hold,
    )
    if bridge is not None:
        attach_bridge(bridge, store, state, service, wake, reconciler.reconcile_or_retry_later)
        ops.metrics.add_gauge_source(
            "carebot_fhir_queue_depth", "Task writes waiting to reach the clinic's FHIR server.", store.fhir_queue_length
        )
    ops.metrics.track_sync_failures(lambda: sync_loop.failed_syncs)

    async def late_keys() -> None:
        await undecryptable.retry(router.on_event)

    chores = [reconciler.retry_if_needed, late_keys] + ([desk.schedule.tick] if desk else [])
    housekeeping = Housekeeping(store, config.retention_days, chores)
    return Running(store, client, sync_loop, outbox, reconciler, reloader, housekeeping, trust, pins, ops, bridge, desk.desks.clock if desk else None)


def _metered(handler: SyncHandler, ops: Operations) -> SyncHandler:
    """The sync handler, telling operations when a batch was handled (sync lag, readiness)."""

    async def on_sync(resp: Any, initial: bool, since: str | None) -> None:
        await handler(resp, initial, since)
        ops.synced()

    return on_sync


class CareBot:
    def __init__(self, config: Config, password: Callable[[], str]) -> None:
        self.config = config
        self.password = password
        self.ready = asyncio.Event()
        self._reload_requested = asyncio.Event()
        self._running: Running | None = None

    # -- what tests, the bench and operators look at while it runs -------------------------
    @property
    def storage(self) -> Path:
        return Path(self.config.storage.path)

    @property
    def running(self) -> Running:
        if self._running is None:
            raise RuntimeError("the bot is not running")
        return self._running

    @property
    def store(self) -> Store:
        return self.running.store

    @property
    def client(self) -> AsyncClient:
        return self.running.client

    @property
    def sync_loop(self) -> SyncLoop | None:
        return None if self._running is None else self._running.sync_loop

    def request_reload(self) -> None:
        self._reload_requested.set()
        if self._running is not None and self._running.bridge is not None:
            self._running.bridge.refresh()  # SIGHUP: read the whole FHIR roster again

    async def reload(self) -> bool:
        return await self.running.reloader.reload()

    async def reconcile(self) -> None:
        await self.running.reconciler.reconcile()

    # -- start-up --------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        self.storage.mkdir(parents=True, exist_ok=True, mode=0o700)
        storage = self.config.storage
        store = await Store.for_config(self.storage, storage.database, storage.db_schema, self.config.bot.user_id)
        ops: Operations | None = None
        try:
            bridge = await open_bridge(self.config, store)  # the roster from FHIR, if fhir.url is set
            # raises ConfigErrors on a broken roster/policy
            care = CareContext.load(self.config, roster=bridge_roster(bridge)())
            state = LiveState(care=care, file_stamp=CareContext.stamp(self.config))
            await claim_practitioners(self.config, store, care)
            ops = Operations(self.config, store)
            await ops.start()
            client = await connect(
                self.config.homeserver.url,
                self.config.bot.user_id,
                self.password,
                self.config.bot.device_name,
                self.storage,
            )
            try:
                await self._setup_identity(client)
                room_version = await _default_room_version(client)
                self._running = assemble(
                    self.config, store, client, state, room_version, self._reload_requested, ops, bridge
                )
                await self._main(self._running, stop)
            finally:
                await client.close()
        finally:
            if ops is not None:
                await ops.stop()
            await store.close()

    async def _setup_identity(self, client: AsyncClient) -> None:
        status = await xsign.ensure_cross_signing(client, self.password(), self.storage)
        if status.recovery_key_path:
            log.warning(
                "identity.created",
                recovery_key_file=str(status.recovery_key_path),
                advice="copy this recovery key somewhere safe and offline, then delete the file",
            )
        elif (left := xsign.recovery_key_left_behind(self.storage)) is not None:
            # Every start, until the file is gone: a copy of storage.path holds both the
            # cross-signing keys and the key that restores them.
            log.warning(
                "identity.recovery_key_on_disk",
                recovery_key_file=str(left),
                danger="the recovery key lies beside the cross-signing keys it protects",
                advice="copy it somewhere safe and offline, then delete the file; this warning repeats at every start until then",
            )
        log.info("identity.ready", device_signed=status.device_signed)

    async def _main(self, parts: Running, stop: asyncio.Event) -> None:
        loop = parts.sync_loop
        tasks = [
            asyncio.create_task(loop.run(stop), name="sync"),
            asyncio.create_task(parts.outbox.run(stop), name="outbox"),
            asyncio.create_task(parts.reloader.watch(stop), name="watch"),
            asyncio.create_task(parts.housekeeping.run(stop), name="housekeeping"),
            asyncio.create_task(parts.trust.watch(stop, parts.pins.members), name="identities"),
        ]
        if parts.bridge is not None:
            tasks.append(asyncio.create_task(parts.bridge.run(stop), name="fhir"))
        try:
            synced = asyncio.create_task(loop.synced.wait())
            await asyncio.wait([synced, tasks[0]], return_when=asyncio.FIRST_COMPLETED)
            if not synced.done():
                synced.cancel()
                tasks[0].result()  # the sync task ended before the first sync: raise why
                return
            await parts.reconciler.reconcile_or_retry_later()
            self.ready.set()
            log.info("carebot.ready", rooms=len(await parts.store.rooms()))
            done, _ = await asyncio.wait(
                tasks + [asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            stop.set()
            parts.outbox.wake()
            sending = tasks[1]
            for task in tasks:
                if task is not sending:
                    task.cancel()
            # The outbox finishes the item in flight (sent, then removed from the outbox)
            # rather than being cut between the two; if the homeserver does not answer in
            # time it is abandoned cleanly: still queued, re-sent at the next start under the
            # same transaction id, which the homeserver de-duplicates.
            try:
                await asyncio.wait_for(asyncio.shield(sending), OUTBOX_STOP_GRACE_S)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - stopping anyway
                sending.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _default_room_version(client: AsyncClient) -> str:
    try:
        body = await nio_private.capabilities(client)
        return str(body["capabilities"]["m.room_versions"]["default"])
    except Exception:  # noqa: BLE001 - an old server without capabilities: be conservative
        return "10"


def install_signal_handlers(bot: CareBot, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, bot.request_reload)
