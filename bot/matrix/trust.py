"""Which devices get room keys: the clinic's `trust` setting, applied before every key share.

- `tofu` (default): the devices of the pair's members get keys, as Element does without
  "exclude insecure devices". Devices not cross-signed by their owner are reported once, so
  the practitioner can ask the person to verify them.
- `cross-signed`: only devices cross-signed by their owner get keys (MSC4153). The others are
  sent `m.room_key.withheld` with code `m.unverified`, so their clients can say why.

Cross-signing status comes from /keys/query and is checked here (bot.matrix.crypto); it is
cached per user and refreshed when the homeserver says that user's devices changed, or when the
pinned identity changes. With `pins`, a device counts as cross-signed only if its owner's
*pinned* master key signs it (identity pinning): the first master key seen for each roster
member is pinned, and a new one (an identity reset) is reported and, until the clinic admin
accepts it, signs nothing in the bot's eyes. `watch` re-reads the identities of members whose
devices changed, so a reset is noticed without waiting for a message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import uuid4

import structlog
from nio import AsyncClient
from nio.api import Api
from nio.responses import ToDeviceResponse

from bot.matrix import nio_private
from bot.matrix.crypto import devices_cross_signed_in, query_keys, server_identity

log = structlog.get_logger("carebot.trust")

TOFU = "tofu"
CROSS_SIGNED = "cross-signed"


class Pins(Protocol):
    """Pinned master keys (bot/runtime/identities.py keeps them in the store)."""

    async def pinned(self, user_ids: list[str], fresh: bool = False) -> dict[str, str]: ...

    async def observe(self, master_keys: dict[str, str | None]) -> None: ...

    async def pending(self, user_id: str) -> str | None: ...


@dataclass
class DeviceTrust:
    client: AsyncClient
    mode: str = TOFU
    pins: Pins | None = None
    _signed: dict[str, set[str]] = field(default_factory=dict)
    _pinned_with: dict[str, str | None] = field(default_factory=dict)
    _withheld: set[tuple[str, str, str]] = field(default_factory=set)
    _dirty: set[str] = field(default_factory=set)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def invalidate(self, user_ids: Iterable[str]) -> None:
        for user_id in user_ids:
            self._signed.pop(user_id, None)
            self._dirty.add(user_id)
        if self._dirty:
            self._changed.set()

    async def signed(self, user_ids: Iterable[str], fresh: bool = False) -> dict[str, set[str]]:
        """Per user, the devices cross-signed by the user's pinned (or, unpinned, current)
        master key. `fresh`: the pins read from the store now, not the last few seconds' read."""
        users = list(dict.fromkeys(user_ids))
        pins = await self.pins.pinned(users, fresh=fresh) if self.pins is not None else {}
        missing = [u for u in users if u not in self._signed or self._pinned_with.get(u) != pins.get(u)]
        if missing:
            query = await query_keys(self.client, missing)
            if self.pins is not None:
                await self.pins.observe({u: server_identity(query, u)["master"] for u in missing})
                pins = await self.pins.pinned(users)
            found = devices_cross_signed_in(query, missing, {u: pins[u] for u in missing if u in pins})
            for u in missing:
                self._signed[u] = found.get(u, set())
                self._pinned_with[u] = pins.get(u)
        return {u: self._signed.get(u, set()) for u in users}

    async def watch(self, stop: asyncio.Event, members: Callable[[], AbstractSet[str]]) -> None:
        """Re-read the identities of roster members whose devices changed (all of them at
        start), so that a new master key is pinned or reported without waiting for a message."""
        self._dirty.update(members())
        self._changed.set()
        failures = 0
        while not stop.is_set():
            stopping = asyncio.ensure_future(stop.wait())
            changed = asyncio.ensure_future(self._changed.wait())
            await asyncio.wait({stopping, changed}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            changed.cancel()
            if stop.is_set():
                return
            self._changed.clear()
            wanted = members()
            users = sorted(u for u in self._dirty if u in wanted)
            self._dirty.clear()
            if not users:
                continue
            for user_id in users:
                self._signed.pop(user_id, None)
            try:
                await self.signed(users)
                failures = 0
            except Exception as e:  # noqa: BLE001 - the homeserver is away: try again later
                failures += 1
                log.warning("trust.identity_check_failed", users=len(users), error=type(e).__name__)
                self._dirty.update(users)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=min(30.0, 0.5 * 2**failures))
                except asyncio.TimeoutError:
                    self._changed.set()

    async def unsigned_devices(self, user_ids: Iterable[str]) -> dict[str, list[str]]:
        """Per user, known devices that are not cross-signed by their owner. In `cross-signed`
        mode such a device is refused its room key: then the pins are read again first, so an
        identity the admin has just accepted (`carebot trust accept`) counts at once."""
        users = list(user_ids)
        out = self._unsigned(await self.signed(users))
        if out and self.mode == CROSS_SIGNED and self.pins is not None:
            out = self._unsigned(await self.signed(users, fresh=True))
        return out

    def _unsigned(self, signed: dict[str, set[str]]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for user_id, ok in signed.items():
            devices = self.client.device_store.active_user_devices(user_id)
            bad = sorted(d.id for d in devices if d.id not in ok)
            if bad:
                out[user_id] = bad
        return out

    async def prepare(self, user_ids: Iterable[str]) -> dict[str, list[str]]:
        """Mark devices for nio before a key share; returns the refused or unsigned devices."""
        users = list(user_ids)
        unsigned = await self.unsigned_devices(users)
        if self.mode != CROSS_SIGNED:
            return unsigned
        for user_id in users:
            for device in self.client.device_store.active_user_devices(user_id):
                if device.id in unsigned.get(user_id, ()):
                    if not self.client.olm.is_device_blacklisted(device):  # type: ignore[union-attr]
                        self.client.blacklist_device(device)
                else:
                    if self.client.olm.is_device_blacklisted(device):  # type: ignore[union-attr]
                        self.client.unblacklist_device(device)
                    if not self.client.olm.is_device_verified(device):  # type: ignore[union-attr]
                        self.client.verify_device(device)
        return unsigned

    async def send_withheld(self, room_id: str, refused: dict[str, list[str]]) -> None:
        """Tell refused devices, once per session, that the key is withheld (m.unverified)."""
        olm = self.client.olm
        if olm is None or self.mode != CROSS_SIGNED or not refused:
            return
        session = olm.outbound_group_sessions.get(room_id)
        if session is None:
            return
        messages: dict[str, dict[str, Any]] = {}
        for user_id, devices in refused.items():
            for device_id in devices:
                key = (session.id, user_id, device_id)
                if key in self._withheld:
                    continue
                self._withheld.add(key)
                messages.setdefault(user_id, {})[device_id] = {
                    "room_id": room_id,
                    "algorithm": "m.megolm.v1.aes-sha2",
                    "session_id": session.id,
                    "sender_key": olm.account.identity_keys["curve25519"],
                    "code": "m.unverified",
                    "reason": "This device is not cross-signed by its owner; verify it to read this room.",
                }
        if not messages:
            return
        method, path, data = Api.to_device(
            self.client.access_token, "m.room_key.withheld", {"messages": messages}, uuid4()
        )
        resp = await nio_private.send(  # nio has no withheld sender
            self.client, ToDeviceResponse, method, path, data, response_data=(None,)
        )
        if not isinstance(resp, ToDeviceResponse):  # not sent: try again with the next message
            for user_id, devices in messages.items():
                for device_id in devices:
                    self._withheld.discard((session.id, user_id, device_id))
        log.info("trust.withheld", room_id=room_id, devices=sum(len(v) for v in messages.values()), ok=isinstance(resp, ToDeviceResponse))
