"""One way to create a room the bot keeps (pair rooms, desks, Spaces): the caller's body, with
all its initial state, in one /createRoom request. A refusal is logged with the server's
status and leaves nothing half-made: the caller records nothing, and its next reconciliation
tries again (bot/runtime/reconcile.py `retry_if_needed`)."""

from __future__ import annotations

from typing import Any

import structlog
from nio import AsyncClient, RoomCreateResponse

from bot.matrix import nio_private

log = structlog.get_logger("carebot")


async def create_room(client: AsyncClient, body: dict[str, Any], failed: str, **fields: str) -> str | None:
    """The new room's id, or None after logging `failed` (an event name) with `fields` (ids
    only: never a name) and the server's status."""
    resp = await nio_private.create_room(client, body)
    if not isinstance(resp, RoomCreateResponse):
        log.error(failed, status=getattr(resp, "status_code", None), **fields)
        return None
    return resp.room_id
