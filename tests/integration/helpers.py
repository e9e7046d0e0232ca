"""Real, encrypted Matrix users and a real bot for integration tests (no homeserver mocks).

`NioUser` is a matrix-nio client with its own crypto store: it accepts invites, decrypts what
it receives and records it, and lets a test wait for a message with a timeout.
`running_bot` runs the carebot application in-process against the test Synapse.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from nio import (
    AsyncClient,
    AsyncClientConfig,
    InviteMemberEvent,
    LoginResponse,
    MegolmEvent,
    RoomMessage,
    SyncResponse,
)

from bot.runtime import CareBot
from bot.config import load_config
from bot.matrix.client import key_bookkeeping

DEFAULT_TIMEOUT = 30.0


@dataclass
class Seen:
    room_id: str
    event_id: str
    sender: str
    content: dict[str, Any]
    decrypted: bool


@dataclass
class NioUser:
    user_id: str
    password: str
    homeserver: str
    store: Path
    client: AsyncClient | None = None
    seen: list[Seen] = field(default_factory=list)
    auto_join: bool = True
    _task: asyncio.Task[None] | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    invites: list[str] = field(default_factory=list)

    async def start(self) -> "NioUser":
        self.store.mkdir(parents=True, exist_ok=True)
        self.client = AsyncClient(
            self.homeserver,
            self.user_id,
            store_path=str(self.store),
            config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False),
        )
        resp = await self.client.login(self.password, device_name="test-device")
        assert isinstance(resp, LoginResponse), resp
        await self.client.keys_upload()
        self._task = asyncio.create_task(self._loop())
        return self

    async def _loop(self) -> None:
        assert self.client is not None
        c = self.client
        while True:
            resp = await c.sync(timeout=1000)
            if not isinstance(resp, SyncResponse):
                await asyncio.sleep(0.2)
                continue
            await key_bookkeeping(c)
            for room_id, info in resp.rooms.invite.items():
                if any(isinstance(e, InviteMemberEvent) for e in info.invite_state):
                    if room_id not in self.invites:
                        self.invites.append(room_id)
                    if self.auto_join:
                        await c.join(room_id)
            for room_id, info in resp.rooms.join.items():
                for ev in info.timeline.events:
                    if isinstance(ev, MegolmEvent):
                        self.seen.append(Seen(room_id, ev.event_id, ev.sender, {}, False))
                    elif isinstance(ev, RoomMessage):
                        content = ev.source.get("content", {})
                        if getattr(ev, "decrypted", False) or "ciphertext" not in content:
                            self.seen.append(Seen(room_id, ev.event_id, ev.sender, content, True))
            async with self._changed:
                self._changed.notify_all()

    async def wait_for(
        self, predicate: Callable[[Seen], bool], timeout: float = DEFAULT_TIMEOUT, after: int = 0
    ) -> Seen:
        async def find() -> Seen:
            while True:
                for s in self.seen[after:]:
                    if predicate(s):
                        return s
                async with self._changed:
                    await self._changed.wait()

        return await asyncio.wait_for(find(), timeout)

    async def wait_room(self, predicate: Callable[[str], bool] | None = None, timeout: float = DEFAULT_TIMEOUT) -> str:
        async def find() -> str:
            while True:
                assert self.client is not None
                for room_id in self.client.rooms:
                    if predicate is None or predicate(room_id):
                        return room_id
                async with self._changed:
                    await self._changed.wait()

        return await asyncio.wait_for(find(), timeout)

    async def send(self, room_id: str, body: str) -> str:
        assert self.client is not None
        resp = await self.client.room_send(
            room_id,
            "m.room.message",
            {"msgtype": "m.text", "body": body},
            ignore_unverified_devices=True,
        )
        event_id = getattr(resp, "event_id", None)
        assert event_id, resp
        return str(event_id)

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.client:
            await self.client.close()


@dataclass
class Clinic:
    """A bot account, a practitioner and a patient in a roster, with config files on disk."""

    dir: Path
    homeserver: str
    bot: tuple[str, str]
    practitioner: tuple[str, str]
    patient: tuple[str, str]
    config_path: Path

    def user(self, who: tuple[str, str], name: str) -> NioUser:
        return NioUser(who[0], who[1], self.homeserver, self.dir / "clients" / name)

    def write_roster(self, data: dict[str, Any]) -> None:
        (self.dir / "roster.yaml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))


def roster_for(practitioner: str, patient: str, **care: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "practitioner": "dr-a",
        "last_consultation": (dt.date.today() - dt.timedelta(days=30)).isoformat(),
        "treatments": [{"name": "Levothyroxine 75 µg", "long_term": True}],
    }
    entry.update(care)
    return {
        "practitioners": [
            {"id": "dr-a", "matrix_id": practitioner, "display_name": "Dr Ana Test", "messaging": True}
        ],
        "patients": [
            {"id": "pat-1", "matrix_id": patient, "display_name": "Pat Test", "care": [entry]}
        ],
    }


def make_clinic(
    tmp: Path, homeserver: Any, new_user: Callable[[str], tuple[str, str]], locale: str = "fr",
    database: str | None = None,
) -> Clinic:
    """A clinic on disk; `database`: a PostgreSQL URL for the store (None: SQLite in data/)."""
    bot = new_user("carebot")
    practitioner = new_user("drA")
    patient = new_user("patient")
    repo = Path(__file__).resolve().parents[2]
    (tmp / "bot-password").write_text(bot[1])
    config = {
        "homeserver": {"url": homeserver.url},
        "bot": {"user_id": bot[0], "password_file": "bot-password", "device_name": "carebot"},
        "storage": {"path": "data"},
        "roster": {"path": "roster.yaml"},
        "policies": {"path": str(repo / "policies")},
        "locale": locale,
        "sync": {"timeout_ms": 2000},
    }
    if database is not None:
        config["storage"]["database"] = database
    config_path = tmp / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    clinic = Clinic(tmp, homeserver.url, bot, practitioner, patient, config_path)
    clinic.write_roster(roster_for(practitioner[0], patient[0]))
    return clinic


@contextlib.asynccontextmanager
async def running_bot(config_path: Path, ready_timeout: float = 60.0) -> AsyncIterator[CareBot]:
    config = load_config(config_path)
    from bot.config import resolve_password

    password = resolve_password(config)
    bot = CareBot(config, lambda: password)
    stop = asyncio.Event()
    task = asyncio.create_task(bot.run(stop))
    ready = asyncio.create_task(bot.ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        ready.cancel()
        task.result()  # raises the start-up error
    if ready not in done:
        ready.cancel()
        stop.set()
        await task
        raise TimeoutError("the bot did not become ready")
    try:
        yield bot
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def store_counts(config_path: Path, *tables: str) -> dict[str, int]:
    """Row counts of store tables, read through the bot's own Store (SQLite or PostgreSQL)."""
    from bot.store import Store

    config = load_config(config_path)
    store = await Store.for_config(
        Path(config.storage.path), config.storage.database, config.storage.db_schema, config.bot.user_id
    )
    try:
        return {t: int(await store.db.fetchval(f"SELECT count(*) FROM {t}")) for t in tables}
    finally:
        await store.close()


async def outbox_rows(config_path: Path) -> list[tuple[int, str, dict[str, Any]]]:
    """(id, txn id, content) of the bot's queued messages, read beside the running bot from
    whichever store it uses (SQLite in WAL mode, or its PostgreSQL schema)."""
    from bot.db import open_database, schema_for

    config = load_config(config_path)
    db = await open_database(
        Path(config.storage.path), config.storage.database,
        config.storage.db_schema or schema_for(config.bot.user_id),
    )
    try:
        rows = await db.fetch("SELECT id, txn_id, content FROM outbox ORDER BY id")
        return [(int(r[0]), str(r[1]), json.loads(r[2])) for r in rows]
    finally:
        await db.close()


async def lose_database(config_path: Path) -> None:
    """What losing the bot's database means on each store: the SQLite files, or the schema."""
    config = load_config(config_path)
    if config.storage.database is None:
        data = Path(config.storage.path)
        for suffix in ("", "-wal", "-shm"):
            (data / f"carebot.db{suffix}").unlink(missing_ok=True)
        assert not (data / "carebot.db").exists()
        return
    import asyncpg

    from bot.db import schema_for

    conn = await asyncpg.connect(config.storage.database)
    try:
        await conn.execute(f'DROP SCHEMA "{config.storage.db_schema or schema_for(config.bot.user_id)}" CASCADE')
    finally:
        await conn.close()


class BotProcess:
    """`carebot run` as a real child process, so a test can SIGKILL it."""

    def __init__(self, config_path: Path, env: dict[str, str] | None = None) -> None:
        self.config_path = config_path
        self.env = env or {}
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self, timeout: float = 60.0) -> "BotProcess":
        import os
        import sys

        env = {**os.environ, **self.env}
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "run", "--config", str(self.config_path),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env,
            cwd=str(Path(__file__).resolve().parents[2]),
        )
        self._reader = asyncio.create_task(self._read())
        waiter = asyncio.create_task(self._ready.wait())
        died = asyncio.create_task(self.proc.wait())
        done, _ = await asyncio.wait({waiter, died}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        died.cancel()
        if not self._ready.is_set():
            raise RuntimeError("bot did not become ready:\n" + "\n".join(self.lines[-30:]))
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.lines.append(line)
            if '"carebot.ready"' in line:
                self._ready.set()

    async def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        if self._reader:
            await asyncio.wait_for(self._reader, 5)
        return code

    async def stop(self) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.terminate()
        return await self.wait_exit()


class CuttableProxy:
    """A TCP proxy on loopback between the bot and Synapse that a test can cut and restore."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        self.up = True

    async def start(self) -> "CuttableProxy":
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            w.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._conns |= {writer, uw}
        await asyncio.gather(self._pipe(reader, uw), self._pipe(ur, writer))
        self._conns -= {writer, uw}

    def cut(self) -> None:
        self.up = False
        for w in list(self._conns):
            w.close()

    def restore(self) -> None:
        self.up = True

    async def close(self) -> None:
        self.cut()
        if self._server:
            self._server.close()


def replying_to(event_id: str) -> Callable[[Seen], bool]:
    """Matches a message that replies to `event_id` (m.in_reply_to)."""
    return lambda s: s.content.get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id") == event_id


def js_reply_to(event: dict[str, Any]) -> str | None:
    """The event a js peer's message replies to."""
    return ((event.get("content") or {}).get("m.relates_to") or {}).get("m.in_reply_to", {}).get("event_id")


async def element_user(name: str, who: tuple[str, str], homeserver_url: str, env: dict[str, str] | None = None) -> Any:
    """An Element-stack user (matrix-js-sdk + Rust crypto): logged in as `who`, cross-signing
    bootstrapped, in "exclude insecure devices" mode (OnlySignedDevicesIsolationMode).
    `env`: the peer's debugging aids (tests/interop/peer.mjs), e.g. a slow /keys/query."""
    from tests.interop.peer import JsPeer

    user_id, password = who
    peer = await JsPeer.start(name, env=env)
    try:
        await peer.login(homeserver_url, user_id, password, device_name=f"{name}-element")
        boot = await peer.bootstrap_cross_signing(password)
        assert boot["ready"] and boot["ownDevice"]["signedByOwner"], boot
        await peer.set_isolation("only-signed")
    except BaseException:
        await peer.close()
        raise
    return peer


def js_timeline_summary(events: list[dict]) -> str:
    """What the peer has in the room, for failure messages (no full bodies of long texts)."""
    rows = []
    for e in events:
        c = e.get("content") or {}
        rows.append(
            {
                "id": e.get("eventId"),
                "sender": e.get("sender"),
                "type": e.get("type"),
                "encrypted": e.get("encrypted"),
                "decrypted": e.get("decrypted"),
                "decryptionError": e.get("decryptionError"),
                "body": str(c.get("body", ""))[:80],
                "renewal": c.get("carebot.renewal"),
                "replyTo": js_reply_to(e),
                "shield": e.get("shield"),
            }
        )
    return json.dumps(rows, indent=1, ensure_ascii=False)


# Decryption refused because the client did not know the sender's device yet (matrix-js-sdk's
# DecryptionFailureCode): see `wait_js_event(after_reload=True)`.
SENDER_TRUST_FAILURES = ("UNKNOWN_SENDER_DEVICE", "UNSIGNED_SENDER_DEVICE")


async def wait_js_event(
    peer: Any,
    room_id: str,
    predicate: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
    after_reload: bool = False,
) -> dict[str, Any]:
    """Poll the peer's timeline until an event (not still being decrypted) matches.

    `after_reload`: for a message the bot sends as a member joins (the banner). Element's stack
    may try it before its /keys/query for the bot's devices has returned, refuse it for an
    unknown sender device, and never try again until the client restarts (README, "Security
    model"). Such events are decrypted again, as a restart does, until they read: a key the bot
    never shared, or a bot device that is not cross-signed, still fails the wait.
    """
    deadline = time.monotonic() + timeout
    events: list[dict] = []
    while time.monotonic() < deadline:
        events = await peer.messages(room_id)
        for e in events:
            if not e.get("pending") and predicate(e):
                return e
        if after_reload and any(e.get("decryptionError") in SENDER_TRUST_FAILURES for e in events):
            await peer.reread_sender_trust_failures(room_id)
        await asyncio.sleep(0.3)
    raise AssertionError(f"{peer.name}: no {what} in {timeout}s; timeline:\n{js_timeline_summary(events)}\n{peer.tail(20)}")
