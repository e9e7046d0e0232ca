"""One stable, encrypted Matrix device for the bot: login once, restore, sync, send.

- The first start logs in with the password and writes `session.json` (0600) with the device
  id and access token; every later start restores it, so the bot keeps one device for life.
- At start, `whoami` must agree with the session and the crypto store must hold that device's
  keys, or the bot stops with a message that says what to do.
- The sync loop (sync.py) saves the sync token only after the batch's events are handled, and backs off
  exponentially (capped, with jitter) while the homeserver is unreachable.
- Room keys are shared only with the users the caller allows (the pair's members).
- A missing room key is asked of the sender's devices (`request_room_key`), not only of the
  bot's own as nio does; the sending device's answer (a key it forwards itself) is accepted.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import structlog
from aiohttp import ClientError
from nio import (
    AsyncClient,
    AsyncClientConfig,
    LoginResponse,
    MatrixRoom,
    MegolmEvent,
    RoomGetStateEventResponse,
    RoomSendResponse,
    WhoamiResponse,
)
from nio.api import Api
from nio.exceptions import LocalProtocolError
from nio.responses import RoomKeyRequestResponse, ShareGroupSessionResponse

from bot.matrix import nio_private
from bot.matrix.crypto.files import private_dir, write_private

log = structlog.get_logger("carebot.matrix")

SYNC_TOKEN_KEY = "sync_token"
TOKEN_REFUSED = ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN", "M_FORBIDDEN", "M_USER_DEACTIVATED")


class StartupError(Exception):
    """The bot cannot start safely; the message says what the admin should do."""


class CryptoStoreMissing(StartupError):
    """The session names a device whose crypto store is gone: that device can never decrypt
    again (the one case where `carebot recover` may log in as a new device)."""


@dataclass(frozen=True)
class Session:
    homeserver: str
    user_id: str
    device_id: str
    access_token: str


def _write_private(path: Path, text: str) -> None:
    """Atomic write, the temporary file created 0600 (O_EXCL: never an old file's mode)."""
    write_private(path, text)


def load_session(path: Path) -> Session | None:
    if not path.exists():
        return None
    try:
        return Session(**json.loads(path.read_text()))
    except (ValueError, TypeError) as e:
        raise StartupError(
            f"{path} is not a valid carebot session file ({e}). Restore it from a backup, or "
            "move it away to log in again as a new device (then run `carebot recover`)."
        ) from e


def save_session(path: Path, session: Session) -> None:
    _write_private(path, json.dumps(asdict(session), indent=2))


@dataclass(frozen=True)
class Backoff:
    base: float = 0.5
    cap: float = 15.0

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)], at least 0.1 s."""
        return max(0.1, random.uniform(0, min(self.cap, self.base * (2**attempt))))


def make_client(homeserver: str, user_id: str, storage: Path, device_id: str | None = None) -> AsyncClient:
    crypto_dir = storage / "crypto"
    crypto_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    config = AsyncClientConfig(
        encryption_enabled=True,
        store_sync_tokens=False,  # carebot saves the token itself, after handling a batch
        max_limit_exceeded=None,  # 429: nio waits retry_after_ms and retries, without limit
        max_timeouts=2,  # connection errors surface to our own backoff
        request_timeout=45,
    )
    return AsyncClient(
        homeserver, user_id, device_id=device_id, store_path=str(crypto_dir), config=config
    )


def _crypto_store_file(storage: Path, user_id: str, device_id: str) -> Path:
    return storage / "crypto" / f"{user_id}_{device_id}.db"


async def connect(
    homeserver: str,
    user_id: str,
    password: Callable[[], str],
    device_name: str,
    storage: Path,
) -> AsyncClient:
    """Log in once, or restore the saved device; check that the server agrees."""
    if private_dir(storage):
        log.warning("storage.permissions_tightened", path=str(storage), mode="0700")
    session_path = storage / "session.json"
    session = load_session(session_path)
    if session is not None:
        if session.user_id != user_id:
            raise StartupError(
                f"{session_path} belongs to {session.user_id}, but the config says bot.user_id "
                f"{user_id}. Point storage.path at that account's directory, or fix bot.user_id."
            )
        if not _crypto_store_file(storage, session.user_id, session.device_id).exists():
            raise CryptoStoreMissing(
                f"The crypto store for device {session.device_id} is missing under "
                f"{storage / 'crypto'}: the bot cannot read its rooms without it. Restore "
                f"{storage} from a backup, or remove {session_path} to log in as a new device "
                "and run `carebot recover` to restore the bot's identity."
            )
        client = make_client(homeserver, user_id, storage, session.device_id)
        client.restore_login(session.user_id, session.device_id, session.access_token)
        try:
            who = await client.whoami()
        except (OSError, asyncio.TimeoutError, ClientError) as e:
            await client.close()
            raise StartupError(
                f"Could not reach the homeserver at {homeserver} to check the saved device "
                f"({type(e).__name__}). Check homeserver.url and that the homeserver is up, then "
                f"start again; keep {session_path}: the device is fine."
            ) from e
        if not isinstance(who, WhoamiResponse):
            await client.close()
            code = getattr(who, "status_code", "")
            if code in TOKEN_REFUSED:
                raise StartupError(
                    f"The homeserver at {homeserver} refused the saved access token ({code} "
                    f"{getattr(who, 'message', '')}). If the device was logged out, remove "
                    f"{session_path} and start again, then run `carebot recover`."
                )
            raise StartupError(
                f"The homeserver at {homeserver} could not check the saved device right now "
                f"({code} {getattr(who, 'message', '')}): it may be restarting or behind a failing "
                f"proxy. Try again later; keep {session_path}: the device is fine."
            )
        if who.user_id != user_id or (who.device_id and who.device_id != session.device_id):
            await client.close()
            raise StartupError(
                f"The homeserver says this token is {who.user_id} / {who.device_id}, but the "
                f"store holds {user_id} / {session.device_id}. Refusing to start with a "
                "mismatched identity; check storage.path and bot.user_id."
            )
        log.info("matrix.restored", device_id=session.device_id)
    else:
        client = make_client(homeserver, user_id, storage)
        resp = await client.login(password(), device_name=device_name)
        if not isinstance(resp, LoginResponse):
            await client.close()
            raise StartupError(
                f"Login as {user_id} on {homeserver} failed: {getattr(resp, 'message', resp)}. "
                "Check bot.user_id and the password (CAREBOT_PASSWORD or bot.password_file)."
            )
        save_session(
            session_path, Session(homeserver, resp.user_id, resp.device_id, resp.access_token)
        )
        log.info("matrix.logged_in", device_id=resp.device_id)
    if client.should_upload_keys:
        await client.keys_upload()
    return client


UNREACHABLE_RETRY_S = 300.0  # a device with no one-time key left is claimed again after this


async def share_room_key(
    client: AsyncClient, room_id: str, users: Iterable[str], ignore_unverified: bool
) -> bool:
    """Share this room's Megolm session with the devices of `users` only; True if shared now.

    nio's own sharing goes to every member in its room view and never reaches a device that
    appears after the session was shared (an invitee joining later, a new phone). carebot
    narrows sharing to the pair and rotates the session whenever one of the pair's devices
    has not received it, so an intruder never gets a key and no member is left out.
    """
    olm = client.olm
    assert olm is not None
    users = list(dict.fromkeys([u for u in users if u != client.user_id] + [client.user_id]))
    # Devices of a member nio does not track yet (an invitee) are fetched once; someone with
    # no device at all (never logged in yet) is asked again at most every 10 s.
    asked: dict[str, float] = nio_private.per_client(client, "devices_asked", dict)
    now = time.monotonic()
    unknown = [
        u
        for u in users
        if u != client.user_id
        and not any(True for _ in olm.device_store.active_user_devices(u))
        and now - asked.get(u, -1e9) > 10
    ]
    if unknown:
        asked.update((u, now) for u in unknown)
        olm.users_for_key_query.update(unknown)
        await client.keys_query()
    # Devices that gave no one-time key when claimed (none left, no fallback key): no Olm
    # session, so no room key, can reach them. They are left out of "who still needs the key"
    # for a while; otherwise every reply would claim again and, nio starting a new Megolm
    # session at each share, re-send a new room key to every device of the pair.
    unreachable: dict[tuple[str, str], float] = nio_private.per_client(client, "unreachable_devices", dict)
    session = olm.outbound_group_sessions.get(room_id)
    if session is not None and session.shared and not session.expired:
        # users_ignored also holds devices that were blacklisted then: one that became
        # trusted since must be served, so only what was really shared counts.
        have = session.users_shared_with
        needed = {
            (u, d.id)
            for u in users
            for d in olm.device_store.active_user_devices(u)
            if d.id != client.device_id and not olm.is_device_blacklisted(d) and unreachable.get((u, d.id), 0.0) <= now
        }
        if needed <= have:
            return False
    missing = olm.get_missing_sessions(users)
    if missing:
        await client.keys_claim(missing)
        still = [(u, d) for u, devices in olm.get_missing_sessions(list(missing)).items() for d in devices]
        if still:
            unreachable.update((key, now + UNREACHABLE_RETRY_S) for key in still)
            log.warning("matrix.devices_unreachable", room_id=room_id, devices=len(still), retry_in_s=UNREACHABLE_RETRY_S)
    requests = []
    for sharing_with, to_device in olm.share_group_session_parallel(
        room_id, users, ignore_unverified_devices=ignore_unverified
    ):
        method, path, data = Api.to_device(
            client.access_token, "m.room.encrypted", to_device, uuid4()
        )
        requests.append(
            nio_private.send(  # nio exposes no public per-user sharing
                client, ShareGroupSessionResponse, method, path, data, response_data=(room_id, sharing_with)
            )
        )
    for result in await asyncio.gather(*requests, return_exceptions=True):
        if isinstance(result, BaseException):
            raise result
    olm.outbound_group_sessions[room_id].shared = True
    return True


async def send_encrypted(
    client: AsyncClient,
    room_id: str,
    content: dict[str, Any],
    txn_id: str,
    allowed_users: Iterable[str],
    ignore_unverified: bool,
    event_type: str = "m.room.message",
    require_encryption: bool = True,
) -> str | None:
    """Send one event with a fixed transaction id; returns the event id, None when not sent."""
    room = client.rooms.get(room_id)
    if room is None:
        # After a restart the bot syncs incrementally: a quiet room is not in nio's view yet.
        joined = await client.joined_rooms()
        if room_id not in getattr(joined, "rooms", []):
            return None  # not joined (yet): the outbox keeps it for the next round
        room = MatrixRoom(room_id, client.user_id, room_id in client.encrypted_rooms)
        client.rooms[room_id] = room
    if require_encryption and not room.encrypted:
        state = await client.room_get_state_event(room_id, "m.room.encryption")
        if not isinstance(state, RoomGetStateEventResponse) or not state.content.get("algorithm"):
            log.error("matrix.refused_plaintext", room_id=room_id)
            return None  # never send a pair room's message in clear
        room.encrypted = True
        client.encrypted_rooms.add(room_id)
    if not room.members_synced:
        await client.joined_members(room_id)
    if client.should_query_keys:
        await client.keys_query()
    if room.encrypted:
        await share_room_key(client, room_id, allowed_users, ignore_unverified)
    try:
        resp = await client.room_send(
            room_id, event_type, content, tx_id=txn_id, ignore_unverified_devices=ignore_unverified
        )
    except LocalProtocolError as e:
        log.warning("matrix.send_refused", room_id=room_id, error=type(e).__name__)
        return None
    if isinstance(resp, RoomSendResponse):
        return str(resp.event_id)
    log.warning("matrix.send_failed", room_id=room_id, status=getattr(resp, "status_code", None))
    return None



async def key_bookkeeping(client: AsyncClient) -> None:
    """What nio leaves to the caller after each sync: queued to-device messages, one-time
    key upload, device-key queries and Olm session claims."""
    await client.send_to_device_messages()
    if client.should_upload_keys:
        await client.keys_upload()
    if client.should_query_keys:
        await client.keys_query()
    if client.should_claim_keys:
        await client.keys_claim(client.get_users_for_key_claiming())


async def request_room_key(client: AsyncClient, room_id: str, event: MegolmEvent) -> bool:
    """Ask the devices of the message's sender (and the bot's own) for its Megolm key, once per
    session; True if a request went out now. A sender's client answers only for a session it
    had shared with the bot's device (a lost to-device message, a wedged Olm session): the key
    is then forwarded by the sending device itself, which the bot accepts and trusts as if it
    had come first-hand (bot/matrix/sender_trust.py)."""
    olm = client.olm
    if olm is None or not event.session_id or not event.sender_key:
        return False
    nio_private.accept_forwards_from_session_owner(client)
    if event.session_id in olm.outgoing_key_requests:
        return False
    resp = await nio_private.request_room_key(client, room_id, event.sender, event.sender_key, event.session_id)
    return isinstance(resp, RoomKeyRequestResponse)
