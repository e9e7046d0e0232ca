"""The sync loop: sync, hand the batch to the bot, save the token; back off while the
homeserver is unreachable. And paging back events a gappy ("limited") sync left out."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from nio import AsyncClient, MessageDirection, RoomMessagesResponse, SyncResponse

from bot.matrix.client import Backoff, key_bookkeeping

log = structlog.get_logger("carebot.matrix")

# handler(batch, initial, since): `since` is the token the batch was asked from (None at first).
SyncHandler = Callable[[SyncResponse, bool, "str | None"], Awaitable[None]]


async def missed_events(client: AsyncClient, room_id: str, prev_batch: str, since: str) -> list[Any]:
    """Events of a room that a limited sync timeline left out, oldest first.

    After a long outage the sync returns only the last events of a busy room ("limited");
    the rest is paged back from the timeline's start down to the previous sync token.
    """
    chunks: list[Any] = []
    start = prev_batch
    for _ in range(50):  # at most 5,000 missed events per room and batch
        resp = await client.room_messages(
            room_id, start=start, end=since, direction=MessageDirection.back, limit=100
        )
        if not isinstance(resp, RoomMessagesResponse):
            raise RuntimeError(f"could not page back missed events ({getattr(resp, 'status_code', '')})")
        chunks.extend(resp.chunk)
        if not resp.chunk or not resp.end or resp.end == start:
            break
        start = resp.end
    return list(reversed(chunks))


class SyncLoop:
    """Sync, hand the batch to `handler`, then save the token. Back off while unreachable."""

    def __init__(
        self,
        client: AsyncClient,
        get_token: Callable[[], Awaitable[str | None]],
        save_token: Callable[[str], Awaitable[None]],
        handler: SyncHandler,
        timeout_ms: int = 30000,
        backoff: Backoff | None = None,
        sync_filter: dict[str, Any] | None = None,
        settle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.client = client
        self.get_token = get_token
        self.save_token = save_token
        self.handler = handler
        self.timeout_ms = timeout_ms
        self.backoff = backoff or Backoff()
        self.sync_filter = sync_filter
        self.settle = settle  # awaited before each sync but the first (the outbox's `settled`)
        self.synced = asyncio.Event()
        self.failed_syncs = 0  # since start, for health checks and tests
        self.since: str | None = None  # the token the batch being handled was asked from

    async def _housekeeping(self) -> None:
        await key_bookkeeping(self.client)

    async def run(self, stop: asyncio.Event) -> None:
        token = await self.get_token()
        initial = token is None
        first = True
        failures = 0
        while not stop.is_set():
            if not first and self.settle is not None:
                await self.settle()
            try:
                # After a restart the sync is incremental from the saved token: rooms that
                # stay quiet are not loaded at all (nio remembers which rooms are encrypted),
                # which keeps restarts fast with thousands of rooms.
                resp = await self.client.sync(
                    timeout=0 if first else self.timeout_ms,
                    since=token,
                    sync_filter=self.sync_filter,
                )
            except (asyncio.TimeoutError, OSError, Exception) as e:  # noqa: BLE001
                if isinstance(e, asyncio.CancelledError):
                    raise
                resp = e  # type: ignore[assignment]
            if not isinstance(resp, SyncResponse):
                delay = self.backoff.delay(failures)
                failures += 1
                self.failed_syncs += 1
                log.warning(
                    "matrix.sync_failed",
                    attempt=failures,
                    retry_in_s=round(delay, 2),
                    error=type(resp).__name__,
                    status=getattr(resp, "status_code", None),
                )
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                except asyncio.TimeoutError:
                    pass
                continue
            if failures:
                log.info("matrix.sync_recovered", after_failures=failures)
            failures = 0
            self.since = token
            try:
                # Events of the very first sync of a new bot predate it: state only, no replies.
                await self.handler(resp, initial, token)
                # Key upload/query/claim after the batch, as nio's own loop does: replies
                # are not held back by bookkeeping.
                await self._housekeeping()
            except Exception as e:  # noqa: BLE001
                # Not saving the token means this batch comes again: handled events are
                # skipped by id, the others are retried. Nothing is lost.
                delay = self.backoff.delay(failures)
                failures += 1
                self.failed_syncs += 1
                log.exception("matrix.batch_failed", error=type(e).__name__, retry_in_s=round(delay, 2))
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                except asyncio.TimeoutError:
                    pass
                continue
            token = resp.next_batch
            await self.save_token(token)
            initial = False
            first = False
            self.synced.set()
