"""What the operations endpoints read from the store at each scrape (bot/ops): counts only."""

from __future__ import annotations

from bot.db import Database
from bot.ops.metrics import StoreSnapshot


class OpsTables:
    db: Database

    async def ops_snapshot(self) -> StoreSnapshot:
        outbox = await self.db.fetchrow("SELECT count(*), min(created_at) FROM outbox")
        requests = await self.db.fetch("SELECT status, count(*) FROM requests GROUP BY status")
        rooms = await self.db.fetch("SELECT state, count(*) FROM rooms GROUP BY state")
        waiting = await self.db.fetchval("SELECT count(*) FROM undecryptable")
        return StoreSnapshot(
            outbox_depth=int(outbox[0]) if outbox else 0,
            outbox_oldest_created_at=None if not outbox or outbox[1] is None else float(outbox[1]),
            requests_by_status={str(s): int(n) for s, n in requests},
            rooms_by_state={str(s): int(n) for s, n in rooms},
            undecryptable_waiting=int(waiting or 0),
        )
