"""Drive the Element-stack peer (tests/interop/peer.mjs: matrix-js-sdk + Rust crypto) from pytest.

    peer = await JsPeer.start("alice")
    await peer.login(hs.url, user_id, password)
    await peer.call("send", roomId=room, body="hi")
    await peer.close()

One node process is one Matrix user with one (in-memory) device. Requests are JSON lines with
an `id`; answers come back with the same id, so calls may overlap. The peer's stderr (sdk logs)
is kept in `peer.log` and shown when a call fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "peer.mjs"
NODE_MODULES = HERE / "node_modules"


class PeerError(RuntimeError):
    """The peer answered a request with an error."""


class PeerSetupError(RuntimeError):
    """node or the peer's npm packages are missing."""


def check_installed() -> str:
    node = shutil.which("node")
    if node is None:
        raise PeerSetupError("`node` is not on PATH: the interop peer needs Node.js >= 20")
    if not (NODE_MODULES / "matrix-js-sdk").is_dir():
        raise PeerSetupError(
            f"{NODE_MODULES} has no matrix-js-sdk: run `make interop` "
            "(or `cd tests/interop && npm ci`) first"
        )
    return node


class JsPeer:
    def __init__(self, proc: asyncio.subprocess.Process, name: str) -> None:
        self.proc = proc
        self.name = name
        self.log: deque[str] = deque(maxlen=400)
        self.user_id: str | None = None
        self.device_id: str | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._readers = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_stderr()),
        ]

    @classmethod
    async def start(
        cls, name: str = "peer", *, log_level: str = "warn", timeout: float = 30, env: dict[str, str] | None = None
    ) -> JsPeer:
        """`env`: extra environment for this peer (its debugging aids, e.g. PEER_DELAY_KEYS_QUERY_MS)."""
        node = check_installed()
        env = dict(os.environ, PEER_LOG_LEVEL=os.environ.get("PEER_LOG_LEVEL", log_level), **(env or {}))
        proc = await asyncio.create_subprocess_exec(
            node,
            str(SCRIPT),
            cwd=str(HERE),
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=16 * 1024 * 1024,
        )
        peer = cls(proc, name)
        try:
            await asyncio.wait_for(asyncio.shield(peer._ready), timeout)
        except BaseException:
            await peer.close()
            raise
        return peer

    async def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        try:
            while line := await self.proc.stdout.readline():
                try:
                    msg = json.loads(line)
                except ValueError:
                    self.log.append(f"[stdout, not json] {line.decode(errors='replace').rstrip()}")
                    continue
                if msg.get("ready") and not self._ready.done():
                    self._ready.set_result(None)
                    continue
                fut = self._pending.pop(msg.get("id"), None)
                if fut is None or fut.done():
                    self.log.append(f"[unmatched answer] {msg}")
                elif "error" in msg:
                    fut.set_exception(PeerError(f"{self.name}: {msg['error']}\n{self.tail(20)}"))
                else:
                    fut.set_result(msg.get("result"))
        finally:
            gone = PeerError(f"{self.name}: node peer exited (rc={self.proc.returncode})\n{self.tail()}")
            if not self._ready.done():
                self._ready.set_exception(gone)
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(gone)
            self._pending.clear()

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        # PEER_LOG_DIR (a debugging aid): keep each peer's whole stderr in <dir>/<name>-<pid>.log.
        log_dir = os.environ.get("PEER_LOG_DIR")
        sink = open(Path(log_dir) / f"{self.name}-{self.proc.pid}.log", "a") if log_dir else None
        try:
            while line := await self.proc.stderr.readline():
                text = line.decode(errors="replace").rstrip()
                self.log.append(text)
                if sink is not None:
                    sink.write(text + "\n")
                    sink.flush()
        finally:
            if sink is not None:
                sink.close()

    def tail(self, n: int = 40) -> str:
        return "\n".join(list(self.log)[-n:])

    async def call(self, cmd: str, *, timeout: float = 60, **params: Any) -> Any:
        """Send one command and wait for its answer; raise PeerError on an error answer."""
        if self.proc.returncode is not None or self.proc.stdin is None:
            raise PeerError(f"{self.name}: node peer is not running\n{self.tail()}")
        req_id = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        self.proc.stdin.write((json.dumps({"id": req_id, "cmd": cmd, **params}) + "\n").encode())
        await self.proc.stdin.drain()
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            self._pending.pop(req_id, None)
            raise PeerError(f"{self.name}: `{cmd}` got no answer in {timeout}s\n{self.tail()}") from None

    # -- conveniences -------------------------------------------------------------------------

    async def login(self, base_url: str, user_id: str, password: str, device_name: str = "js-peer") -> dict:
        res = await self.call(
            "login", baseUrl=base_url, userId=user_id, password=password, deviceName=device_name
        )
        self.user_id, self.device_id = res["userId"], res["deviceId"]
        return res

    async def bootstrap_cross_signing(self, password: str) -> dict:
        return await self.call("bootstrapCrossSigning", password=password)

    async def reset_cross_signing(self, password: str) -> dict:
        """A new identity (master key), as Element's "reset your identity"."""
        return await self.call("resetCrossSigning", password=password)

    async def set_isolation(self, mode: str = "only-signed") -> None:
        await self.call("setIsolation", mode=mode)

    async def create_room(self, invite: Sequence[str] = (), encrypted: bool = True) -> str:
        res = await self.call("createRoom", invite=list(invite), encrypted=encrypted)
        return res["roomId"]

    async def wait_invite(self, timeout: float = 30, room_id: str | None = None) -> str:
        """The next invite not reported yet (or, with `room_id`, the invite to that room)."""
        params = {"roomId": room_id} if room_id else {}
        res = await self.call("waitInvite", timeoutMs=int(timeout * 1000), timeout=timeout + 5, **params)
        return res["roomId"]

    async def join(self, room_id: str) -> None:
        await self.call("join", roomId=room_id)

    async def send(self, room_id: str, body: str, **extra: Any) -> str:
        res = await self.call("send", roomId=room_id, body=body, **extra)
        return res["eventId"]

    async def reply(self, room_id: str, event_id: str, body: str, with_fallback: bool = True) -> str:
        """An Element reply to `event_id` (with the quoted fallback, unless told not to)."""
        res = await self.call("reply", roomId=room_id, eventId=event_id, body=body, withFallback=with_fallback)
        return res["eventId"]

    async def edit(self, room_id: str, event_id: str, body: str, crafted: bool = False) -> str:
        """An Element edit ("* body" + m.new_content); `crafted`: m.replace with a bare body."""
        res = await self.call("edit", roomId=room_id, eventId=event_id, body=body, crafted=crafted)
        return res["eventId"]

    async def send_in_thread(self, room_id: str, thread_id: str, body: str) -> str:
        res = await self.call("sendInThread", roomId=room_id, threadId=thread_id, body=body)
        return res["eventId"]

    async def redact(self, room_id: str, event_id: str, reason: str | None = None) -> str:
        res = await self.call("redact", roomId=room_id, eventId=event_id, reason=reason)
        return res["eventId"]

    async def leave(self, room_id: str) -> None:
        await self.call("leave", roomId=room_id)

    async def messages(self, room_id: str) -> list[dict]:
        return (await self.call("messages", roomId=room_id))["events"]

    async def reread_sender_trust_failures(self, room_id: str) -> list[str]:
        """Decrypt again, as a restarted Element does, the events the sdk refused because it did
        not know the sender's device yet (it never retries those by itself): their ids."""
        return (await self.call("rereadSenderTrustFailures", roomId=room_id))["retried"]

    async def wait_message(self, room_id: str, timeout: float = 30, **pattern: Any) -> dict:
        return await self.call(
            "waitMessage", roomId=room_id, timeoutMs=int(timeout * 1000), timeout=timeout + 5, **pattern
        )

    async def state(self, room_id: str, type: str, state_key: str = "") -> Any:
        return (await self.call("state", roomId=room_id, type=type, stateKey=state_key))["content"]

    async def rooms(self) -> list[dict]:
        """Every room the client knows: roomId, name (client-computed), membership, isSpace,
        children (for a Space) and the carebot.* state it sees."""
        return (await self.call("rooms"))["rooms"]

    async def room(self, room_id: str) -> dict:
        return await self.call("room", roomId=room_id)

    async def device_trust(self, user_id: str, device_id: str) -> dict:
        return await self.call("deviceTrust", userId=user_id, deviceId=device_id)

    async def user_devices(self, user_id: str) -> dict:
        return (await self.call("userDevices", userId=user_id))["devices"]

    async def close(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                await self.call("stop", timeout=5)
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        for task in self._readers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 2)
