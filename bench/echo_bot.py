"""A bare matrix-nio echo bot: the baseline for carebot's latency and throughput.

Minimal on purpose: one encrypted AsyncClient, joins every invite, answers each m.text it
can read with an m.notice that replies to it (`m.in_reply_to`), trusting every device.
Given every advantage carebot has (a fair baseline): carebot's sync filter, the same key
bookkeeping after each batch, a cross-signed device, and replies sent like carebot's outbox
sends them — rooms in parallel (as many at once as carebot's outbox), each room's replies in
order. It is in as many rooms as carebot: the benchmark creates them for it. Prints
`echo.ready` on stderr once synced.

    python -m bench.echo_bot --homeserver URL --user @echo:localhost --store DIR  (password in env ECHO_PASSWORD)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

from nio import AsyncClient, AsyncClientConfig, InviteMemberEvent, LoginResponse, RoomMessageText, SyncResponse

from bench.fair import OUTBOX_PARALLEL_ROOMS, SYNC_FILTER
from bot.matrix.client import key_bookkeeping
from bot.matrix.crypto.cross_signing import ensure_cross_signing


async def send_replies(client: AsyncClient, replies: dict[str, list[RoomMessageText]], sem: asyncio.Semaphore) -> None:
    """Rooms in parallel (at most as many as carebot's outbox), each room's replies in order."""

    async def room(room_id: str, events: list[RoomMessageText]) -> None:
        async with sem:
            for ev in events:
                await client.room_send(
                    room_id, "m.room.message",
                    {"msgtype": "m.notice", "body": "echo: " + ev.body,
                     "m.relates_to": {"m.in_reply_to": {"event_id": ev.event_id}}},
                    ignore_unverified_devices=True,
                )

    await asyncio.gather(*(room(r, evs) for r, evs in replies.items()))


async def main(args: argparse.Namespace) -> None:
    Path(args.store).mkdir(parents=True, exist_ok=True)
    client = AsyncClient(
        args.homeserver, args.user, store_path=args.store,
        config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False, max_limit_exceeded=None,
                                 max_timeouts=2, request_timeout=45),
    )
    resp = await client.login(os.environ["ECHO_PASSWORD"], device_name="echo")
    assert isinstance(resp, LoginResponse), resp
    if client.should_upload_keys:
        await client.keys_upload()
    # A cross-signed device, as carebot's (its code): an Element patient that excludes insecure
    # devices (bench/element.py --isolation only-signed) shares room keys with no other kind.
    await ensure_cross_signing(client, os.environ["ECHO_PASSWORD"], Path(args.store))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    since = None
    first = True
    sem = asyncio.Semaphore(OUTBOX_PARALLEL_ROOMS)
    while not stop.is_set():
        sync = asyncio.create_task(client.sync(timeout=0 if first else 30000, since=since, sync_filter=SYNC_FILTER))
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({sync, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if stop.is_set():
            sync.cancel()
            break
        resp = sync.result()
        if not isinstance(resp, SyncResponse):
            await asyncio.sleep(0.5)
            continue
        for room_id, info in resp.rooms.invite.items():
            if any(isinstance(e, InviteMemberEvent) and e.state_key == client.user_id for e in info.invite_state):
                await client.join(room_id)
        if not first:
            replies: dict[str, list[RoomMessageText]] = {}
            for room_id, info in resp.rooms.join.items():
                for ev in info.timeline.events:
                    if isinstance(ev, RoomMessageText) and ev.sender != client.user_id:
                        replies.setdefault(room_id, []).append(ev)
            await send_replies(client, replies, sem)
        # After the batch, as carebot's sync loop does.
        await key_bookkeeping(client)
        since = resp.next_batch
        if first:
            first = False
            print('{"event": "echo.ready"}', file=sys.stderr, flush=True)
    await client.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--homeserver", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--store", required=True)
    asyncio.run(main(p.parse_args()))
