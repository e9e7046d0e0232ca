"""Roster and policy reloads: on SIGHUP, or when a file changes. An invalid file keeps what is
in force, and each problem is logged with its file, line and key."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from bot.care.roster import Roster
from bot.care.service import CareContext
from bot.config import Config
from bot.logs import private_text
from bot.runtime.shared import LiveState
from bot.store import Store, StoreError
from bot.yamlutil import ConfigErrors

log = structlog.get_logger("carebot")

POLL_S = 2.0


class Reloader:
    def __init__(
        self,
        config: Config,
        state: LiveState,
        store: Store,
        requested: asyncio.Event,
        on_reloaded: Callable[[], Awaitable[None]],
        roster: Callable[[], Roster | None] = lambda: None,
        accept: Callable[[CareContext], Awaitable[None]] | None = None,
    ) -> None:
        self._config = config
        self._state = state
        self._store = store
        self._requested = requested  # set by SIGHUP
        self._on_reloaded = on_reloaded
        self._roster = roster  # the FHIR bridge's roster in force, or None: roster.path
        self._accept = accept  # a last check before a new roster is put in force (claims)

    async def watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(self._requested.wait(), timeout=POLL_S)
            except asyncio.TimeoutError:
                pass
            stamp = CareContext.stamp(self._config)
            if not self._requested.is_set() and stamp == self._state.file_stamp:
                continue
            self._requested.clear()
            self._state.file_stamp = stamp
            await self.reload()

    async def reload(self) -> bool:
        """Load roster and policies again; an invalid file keeps what is in force."""
        try:
            care = CareContext.load(self._config, roster=self._roster())
            if self._accept is not None:
                await self._accept(care)
        except StoreError as e:  # e.g. another bot serves one of the new roster's practitioners
            log.error("config.reload_rejected", problem=private_text(str(e)))
            async with self._store.transaction():
                await self._store.audit("admin", "config.reload_rejected", None, {"errors": 1})
            return False
        except ConfigErrors as e:
            for err in e.errors:
                # The message may quote the file's values (ids, names, medications): they stay
                # out of the log; `carebot check-config` shows them to the admin.
                log.error(
                    "config.reload_rejected", file=str(err.file), line=err.line, key=err.key,
                    problem=private_text(err.message), advice="run `carebot check-config` for the full message",
                )
            async with self._store.transaction():
                await self._store.audit("admin", "config.reload_rejected", None, {"errors": len(e.errors)})
            return False
        self._state.care = care
        pairs = len(care.roster.verified_pairs())
        async with self._store.transaction():
            await self._store.audit("admin", "config.reloaded", None, {"pairs": pairs}, care.policy_hash)
        log.info("config.reloaded", pairs=pairs)
        await self._on_reloaded()
        return True
