"""Decisions from the clinic's software: carebot's Tasks that changed on the FHIR server.

Polls `Task?identifier=urn:carebot:renewal|&_lastUpdated=ge<cursor>` (the cursor is the newest
`meta.lastUpdated` seen, server time, kept in the store). A Task whose version is the one the
bot wrote itself is skipped; one that the clinic moved to `completed` or `rejected` is handed
to `apply` (the runtime runs it through the same decision path as `!accepter` / `!refuser`).
Tasks the bot does not know (another carebot, a deleted request) are ignored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from bot.care.renewals import format_id
from bot.fhir.client import FhirClient
from bot.fhir.tasks import IDENTIFIER_SYSTEM, TaskView, read_task

log = structlog.get_logger(__name__)

CURSOR = "task_cursor"
CLINIC_DECISIONS = ("completed", "rejected")

Apply = Callable[[TaskView], Awaitable[None]]


class DecisionPoller:
    def __init__(self, client: FhirClient, store: Any, apply: Apply, page_size: int = 200) -> None:
        self.client = client
        self.store = store
        self.apply = apply
        self.page_size = page_size

    async def poll(self) -> int:
        """One poll; returns how many clinic decisions were handed to `apply`. Raises FhirError."""
        saved = await self.store.fhir_state(CURSOR)
        cursor = saved[0] if saved else None
        params: dict[str, Any] = {"identifier": f"{IDENTIFIER_SYSTEM}|", "_sort": "_lastUpdated"}
        if cursor:
            params["_lastUpdated"] = "ge" + cursor
        found = await self.client.search("Task", params, self.page_size)
        applied = 0
        newest = cursor or ""
        for raw in found:
            updated = (raw.get("meta") or {}).get("lastUpdated") or ""
            newest = max(newest, updated)
            view = read_task(raw)
            if view is None:
                continue
            link = await self.store.task_link(view.request_id)
            if link is None or link.task_id != view.task_id or link.version_id == view.version_id:
                continue  # not ours, or our own write
            if view.status in CLINIC_DECISIONS and link.status != view.status:
                log.info("fhir.task.decided_in_clinic_software", request_id=format_id(view.request_id), status=view.status)
                await self.apply(view)
                applied += 1
            else:
                async with self.store.transaction():
                    await self.store.save_task_link(view.request_id, view.task_id, view.version_id, link.status)
        if newest and newest != cursor:
            async with self.store.transaction():
                await self.store.save_fhir_state(CURSOR, newest)
        return applied
