"""The clinic bridge as the running bot sees it: one object, built from the config.

    bridge = Bridge.from_config(config, store)
    build = await bridge.start()                  # the roster (or the saved copy)
    bridge.attach(decisions, on_roster)           # once the runtime's parts exist
    ... inside the transaction of a request or decision:  await bridge.queue(pair, replies)
    ... after that commit:                        bridge.wake()
    ... on SIGHUP:                                bridge.refresh()
    await bridge.run(stop)                         # the loop: drain, roster, decisions

The loop never stops the bot: a FHIR error is logged once per outage (`fhir.unavailable`),
and everything is tried again at the next period (the queue keeps what was not written).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from bot.care.matching import match_treatment
from bot.care.roster import Roster
from bot.fhir.auth import AuthError
from bot.fhir.client import FhirClient, FhirError, FhirUnavailable
from bot.fhir.decisions import ClinicDecisions
from bot.fhir.mapping import RosterBuild
from bot.fhir.poller import DecisionPoller
from bot.fhir.source import FhirRosterSource
from bot.fhir.writer import TaskWriter, queue_for_replies
from bot.store.fhir import CREATE, DECIDE

log = structlog.get_logger(__name__)

OnRoster = Callable[[Roster], Awaitable[None]]


class Bridge:
    def __init__(self, client: FhirClient, store: Any, poll_s: float = 60.0, page_size: int = 500, drain_delay_s: float = 0.3) -> None:
        self.client = client
        self.drain_delay_s = drain_delay_s
        self.store = store
        self.poll_s = poll_s
        self.source = FhirRosterSource(client, store, page_size=page_size)
        self.writer = TaskWriter(client, store)
        self.poller: DecisionPoller | None = None
        self.on_roster: OnRoster | None = None
        self._wake = asyncio.Event()
        self._full = False
        self._down = False

    @classmethod
    def from_config(cls, config: Any, store: Any) -> "Bridge":
        from bot.fhir.setup import make_client

        return cls(make_client(config), store, config.fhir.poll_s, config.fhir.page_size)

    @property
    def build(self) -> RosterBuild | None:
        return self.source.last

    async def start(self) -> RosterBuild:
        return await self.source.start()

    def attach(self, decisions: ClinicDecisions, on_roster: OnRoster) -> None:
        self.poller = DecisionPoller(self.client, self.store, decisions)
        self.writer.on_conflict = decisions.writer_conflict
        self.on_roster = on_roster

    async def queue(self, pair: Any, replies: list[Any]) -> None:
        """In the caller's transaction: queue the Task writes for these replies."""
        renewals = [(r.renewal[0], r.renewal[1]) for r in replies if getattr(r, "renewal", None)]
        if renewals:
            await queue_for_replies(self.store, self.build, pair, renewals)

    def wake(self) -> None:
        self._wake.set()

    def refresh(self) -> None:
        """Read the whole roster again at once (SIGHUP)."""
        self._full = True
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        next_poll = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            self._wake.clear()
            try:
                await self._drain()
                if loop.time() >= next_poll or self._full:
                    await self._sweep()
                    await self._drain()
                    await self._refresh_roster()
                    if self.poller is not None:
                        await self.poller.poll()
                        await self._drain()  # conflicts found by the poll
                    next_poll = loop.time() + self.poll_s
                if self._down:
                    log.info("fhir.available")
                    self._down = False
            except (FhirError, AuthError) as exc:
                if not self._down:
                    log.warning("fhir.unavailable", error=type(exc).__name__, detail=str(exc)[:200] if isinstance(exc, AuthError) else None)
                    self._down = True
                next_poll = loop.time() + min(self.poll_s, 5.0)
            except Exception as exc:  # noqa: BLE001 - the bridge must never stop the bot
                log.error("fhir.loop_error", error=type(exc).__name__)  # no message: it may quote data
                next_poll = loop.time() + self.poll_s
            wait = max(0.05, next_poll - loop.time()) if not self._down else min(self.poll_s, 5.0)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wait_any(stop), timeout=wait)
            if self._wake.is_set() and not stop.is_set():
                # Woken by a new request or decision: let its Matrix reply go out first, so the
                # patient's answer never shares the event loop with the FHIR write.
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.drain_delay_s)

    async def _drain(self) -> None:
        await self.writer.drain()
        if self.writer.deferred:
            raise FhirUnavailable("Task writes deferred: the server cannot be reached")

    async def _wait_any(self, stop: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _sweep(self) -> None:
        """Queue what no path queued: requests made or decided elsewhere (a room closed by a
        roster change, a decision from another part of the bot, requests from before the
        bridge was turned on). The queue rows are idempotent, so this can never double."""
        missing, undecided = await self.store.fhir_unmirrored()
        if not missing and not undecided:
            return
        async with self.store.transaction():
            for request_id, patient_id, practitioner_id, medication in missing:
                focus = None
                pair = self.build.roster.pair(patient_id, practitioner_id) if self.build is not None else None
                if pair is not None:
                    treatment = match_treatment(pair, medication)
                    focus = self.build.focus_for(patient_id, practitioner_id, treatment.name if treatment else medication)
                await self.store.queue_fhir_write(request_id, CREATE, {"focus": focus})
            for request_id in undecided:
                await self.store.queue_fhir_write(request_id, DECIDE, {})
        log.info("fhir.sweep.queued", creates=len(missing), decides=len(undecided))

    async def _refresh_roster(self) -> None:
        full, self._full = self._full, False
        before = self.source.last.roster if self.source.last is not None else None
        try:
            build = await self.source.sync(full=full)
        except BaseException:
            self._full = self._full or full
            raise
        if build.roster != before:
            await self.source.save(build)
            if self.on_roster is not None:
                await self.on_roster(build.roster)
