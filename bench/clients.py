"""Helpers for the benchmark: encrypted patient clients and child processes (bot, echo bot)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from nio import (
    AsyncClient,
    AsyncClientConfig,
    InviteMemberEvent,
    LoginResponse,
    MegolmEvent,
    RoomMessage,
    SyncResponse,
)

from bot.matrix.client import key_bookkeeping

REPO = Path(__file__).resolve().parents[1]


class Patient:
    """A matrix-nio client with encryption that joins invites from `join_from` and records
    when a reply (`m.in_reply_to`) to each of its events arrives, decrypted."""

    def __init__(self, homeserver: str, user_id: str, password: str, store: Path, join_from: set[str]) -> None:
        self.user_id = user_id
        self.password = password
        self.store = store
        self.join_from = join_from
        self.client = AsyncClient(
            homeserver, user_id, store_path=str(store),
            config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False),
        )
        self.invited_by: dict[str, str] = {}  # room id -> inviter
        self.joined: set[str] = set()
        self.replies: dict[str, float] = {}  # replied-to event id -> perf_counter at arrival
        self.undecryptable = 0
        self._waiters: dict[str, asyncio.Future[float]] = {}
        self._pending: list[tuple[str, MegolmEvent]] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> "Patient":
        self.store.mkdir(parents=True, exist_ok=True)
        resp = await self.client.login(self.password, device_name="bench")
        assert isinstance(resp, LoginResponse), resp
        await self.client.keys_upload()
        self._task = asyncio.create_task(self._loop())
        return self

    def _record(self, content: dict[str, Any]) -> None:
        rel = (content.get("m.relates_to") or {}).get("m.in_reply_to") or {}
        eid = rel.get("event_id")
        if eid and eid not in self.replies:
            now = time.perf_counter()
            self.replies[eid] = now
            fut = self._waiters.pop(eid, None)
            if fut is not None and not fut.done():
                fut.set_result(now)

    async def _loop(self) -> None:
        c = self.client
        since = None
        while True:
            resp = await c.sync(timeout=30000 if since else 0, since=since)
            if not isinstance(resp, SyncResponse):
                await asyncio.sleep(0.3)
                continue
            since = resp.next_batch
            await key_bookkeeping(c)
            for room_id, info in resp.rooms.invite.items():
                for e in info.invite_state:
                    if isinstance(e, InviteMemberEvent) and e.state_key == self.user_id:
                        self.invited_by[room_id] = e.sender
                inviter = self.invited_by.get(room_id)
                if inviter in self.join_from and room_id not in self.joined:
                    r = await c.join(room_id)
                    if getattr(r, "room_id", None):
                        self.joined.add(room_id)
            for room_id, info in resp.rooms.join.items():
                self.joined.add(room_id)
                for ev in info.timeline.events:
                    if isinstance(ev, MegolmEvent):
                        self._pending.append((room_id, ev))
                    elif isinstance(ev, RoomMessage) and ev.sender != self.user_id:
                        self._record(ev.source.get("content", {}))
            # Room keys may arrive after the message (to-device in a later sync): retry.
            still = []
            for room_id, ev in self._pending:
                try:
                    dec = c.decrypt_event(ev)
                except Exception:  # noqa: BLE001
                    dec = None
                if dec is None or isinstance(dec, MegolmEvent):
                    still.append((room_id, ev))
                else:
                    self._record(dec.source.get("content", {}))
            self._pending = still[-200:]
            self.undecryptable = len(self._pending)
            self._changed.set()
            self._changed = asyncio.Event()

    async def wait(self, predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.user_id}: condition not met in {timeout} s")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    def room_invited_by(self, inviter: str) -> str | None:
        for room_id, who in self.invited_by.items():
            if who == inviter and room_id in self.joined and room_id in self.client.rooms:
                return room_id
        return None

    async def send(self, room_id: str, body: str) -> str:
        resp = await self.client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": body}, ignore_unverified_devices=True
        )
        eid = getattr(resp, "event_id", None)
        if not eid:
            raise RuntimeError(f"send failed: {resp}")
        return str(eid)

    async def wait_reply(self, eid: str, timeout: float) -> float:
        if eid in self.replies:
            return self.replies[eid]
        fut = self._waiters.setdefault(eid, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(fut, timeout)

    async def roundtrip(self, room_id: str, body: str, timeout: float = 30.0) -> float:
        """Seconds from the send call to the decrypted reply."""
        t0 = time.perf_counter()
        eid = await self.send(room_id, body)
        return await self.wait_reply(eid, timeout) - t0

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.client.close()


class Child:
    """A Python child process whose stderr is JSON lines; counts events, spots readiness."""

    def __init__(self, args: list[str], ready_event: str, env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.args = args
        self.ready_event = ready_event
        self.env = env or {}
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None
        self.counts: dict[str, int] = {}
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.ready = asyncio.Event()
        self.ready_at = 0.0
        self.started_at = 0.0
        self.tail: list[str] = []
        self._reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> "Child":
        self.started_at = time.perf_counter()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, *self.args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **self.env}, cwd=str(REPO), limit=64 * 1024 * 1024,
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        out = open(self.log, "a") if self.log else None
        try:
            async for raw in self.proc.stderr:
                now = time.perf_counter()
                line = raw.decode(errors="replace").rstrip()
                if len(line) > 2000:  # e.g. a whole sync response in a library log line
                    self.counts["long_lines"] = self.counts.get("long_lines", 0) + 1
                    line = line[:2000] + f" …[{len(line)} chars]"
                if out:
                    out.write(line + "\n")
                self.tail = (self.tail + [line])[-40:]
                try:
                    event = json.loads(line).get("event")
                except (ValueError, AttributeError):
                    continue
                if not isinstance(event, str):
                    continue
                self.counts[event] = self.counts.get(event, 0) + 1
                self.first.setdefault(event, now)
                self.last[event] = now
                if event == self.ready_event and not self.ready.is_set():
                    self.ready_at = now
                    self.ready.set()
        finally:
            if out:
                out.close()

    async def wait_ready(self, timeout: float) -> float:
        """Seconds from spawn to the ready line."""
        assert self.proc is not None
        died = asyncio.create_task(self.proc.wait())
        ready = asyncio.create_task(self.ready.wait())
        await asyncio.wait({died, ready}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        died.cancel()
        ready.cancel()
        if not self.ready.is_set():
            raise RuntimeError(f"{self.args} not ready in {timeout} s:\n" + "\n".join(self.tail[-20:]))
        return self.ready_at - self.started_at

    async def wait_count(self, event: str, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.counts.get(event, 0) < n:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.2)
        return True

    def peak_rss_mb(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    async def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            self.proc.terminate()
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout)
        except asyncio.TimeoutError:
            self.proc.kill()
            code = await self.proc.wait()
        if self._reader:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)
        return code
