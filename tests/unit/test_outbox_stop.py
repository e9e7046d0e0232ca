"""Stopping the bot while a reply is being sent: the send in flight is finished and removed
from the outbox; what was not started stays queued for the next start."""

from __future__ import annotations

import asyncio

from bot.runtime.outbox import Outbox
from bot.store import OutboxItem, Store


class GatedOutbox(Outbox):
    """The real run loop; the network part of a send waits for the test to open the gate."""

    def __init__(self, store: Store) -> None:
        super().__init__(None, store, None, tofu=True, on_unsigned=None)  # type: ignore[arg-type]
        self.started = asyncio.Event()
        self.gate = asyncio.Event()
        self.sent: list[str] = []

    async def send_item(self, item: OutboxItem) -> str | None:
        self.started.set()
        await self.gate.wait()
        self.sent.append(item.txn_id)
        return "$" + item.txn_id


async def test_stop_finishes_the_item_in_flight_and_leaves_the_rest_queued(tmp_path):
    store = await Store.open(tmp_path / "db")
    try:
        async with store.transaction():
            await store.enqueue("t1", "!r:x", {"body": "first"})
            await store.enqueue("t2", "!r:x", {"body": "second"})
        outbox, stop = GatedOutbox(store), asyncio.Event()
        running = asyncio.create_task(outbox.run(stop))
        await asyncio.wait_for(outbox.started.wait(), 5)
        stop.set()
        outbox.wake()
        outbox.gate.set()
        await asyncio.wait_for(running, 5)
        assert outbox.sent == ["t1"]
        assert [i.txn_id for i in await store.outbox()] == ["t2"]  # sent and removed; t2 waits
    finally:
        await store.close()
