"""A bare matrix-nio echo bot: the baseline for carebot's latency and throughput.

Minimal on purpose: one encrypted AsyncClient, joins every invite, answers each m.text it
can read with an m.notice that replies to it (`m.in_reply_to`), trusting every device.
It handles a sync batch sequentially, like carebot. Prints `echo.ready` on stderr once synced.

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


async def main(args: argparse.Namespace) -> None:
    Path(args.store).mkdir(parents=True, exist_ok=True)
    client = AsyncClient(
        args.homeserver, args.user, store_path=args.store,
        config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False),
    )
    resp = await client.login(os.environ["ECHO_PASSWORD"], device_name="echo")
    assert isinstance(resp, LoginResponse), resp
    if client.should_upload_keys:
        await client.keys_upload()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    since = None
    first = True
    while not stop.is_set():
        sync = asyncio.create_task(client.sync(timeout=0 if first else 30000, since=since, full_state=first or None))
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
        await client.send_to_device_messages()
        if client.should_upload_keys:
            await client.keys_upload()
        if client.should_query_keys:
            await client.keys_query()
        if client.should_claim_keys:
            await client.keys_claim(client.get_users_for_key_claiming())
        for room_id, info in resp.rooms.invite.items():
            if any(isinstance(e, InviteMemberEvent) for e in info.invite_state):
                await client.join(room_id)
        if not first:
            for room_id, info in resp.rooms.join.items():
                for ev in info.timeline.events:
                    if isinstance(ev, RoomMessageText) and ev.sender != client.user_id:
                        await client.room_send(
                            room_id, "m.room.message",
                            {"msgtype": "m.notice", "body": "echo: " + ev.body,
                             "m.relates_to": {"m.in_reply_to": {"event_id": ev.event_id}}},
                            ignore_unverified_devices=True,
                        )
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
