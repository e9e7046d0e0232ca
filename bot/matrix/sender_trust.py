"""Trust travels with the event: which device sent a decrypted message, and whether the clinic's
`trust` mode trusts it — read from the Megolm session that decrypted it, never from the
homeserver's `sender` alone (as mautrix-python attaches a TrustState to each decrypted event).

The sending device is the one of `sender` whose curve25519 key is the session's sender key and
whose ed25519 key is the one the session was signed with. The session must have come straight
from that device: an `m.room_key` it sent, or an `m.forwarded_room_key` it sent itself in answer
to the bot's request (bot/matrix/nio_private.py; remembered across restarts by the store); a
key forwarded by anyone else does not count.

- `tofu`: that device is known and not blacklisted.
- `cross-signed`: that device is also cross-signed by its owner's *pinned* master key
  (bot/matrix/trust.py); a device signed by a new, not yet accepted identity is not trusted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nio import AsyncClient
from nio.exceptions import LocalProtocolError

from bot.matrix import nio_private
from bot.matrix.trust import CROSS_SIGNED, DeviceTrust

# Why a sender is (not) trusted. Trusted: "cross_signed", "known_device".
NOT_ENCRYPTED = "not_encrypted"
NO_SESSION = "no_session"
UNKNOWN_DEVICE = "unknown_device"
KEYS_MISMATCH = "keys_mismatch"
FORWARDED = "forwarded"
BLACKLISTED = "blacklisted"
NOT_CROSS_SIGNED = "not_cross_signed"
IDENTITY_CHANGED = "identity_changed"


@dataclass(frozen=True)
class SenderTrust:
    trusted: bool
    reason: str
    device_id: str | None = None
    device_name: str | None = None

    def device_label(self) -> str:
        """How the device is named to its owner: "Name (ID)", or the id alone."""
        if self.device_id is None:
            return "?"
        return f"{self.device_name} ({self.device_id})" if self.device_name else self.device_id


# (room id, sender key, session id) -> whether an earlier run got this session from its own device
Remembered = Callable[[str, str, str], Awaitable[bool]]


class SenderTrustCheck:
    def __init__(self, client: AsyncClient, devices: DeviceTrust, remembered: Remembered | None = None) -> None:
        self._client = client
        self._devices = devices
        self._remembered = remembered
        nio_private.accept_forwards_from_session_owner(client)

    async def of(self, event: Any, room_id: str) -> SenderTrust:
        """The trust of a (decrypted) room event's sending device."""
        client = self._client
        sender_key = getattr(event, "sender_key", None)
        session_id = getattr(event, "session_id", None)
        if not getattr(event, "decrypted", False) or not sender_key or not session_id:
            return SenderTrust(False, NOT_ENCRYPTED)
        session = nio_private.inbound_session(client, room_id, sender_key, session_id)
        if session is None:
            return SenderTrust(False, NO_SESSION)
        device = self._device(event.sender, session.sender_key)
        if device is None and client.olm is not None:
            client.olm.users_for_key_query.add(event.sender)  # a device nio has not fetched yet
            try:
                await client.keys_query()
            except LocalProtocolError:
                pass  # another query took the user along meanwhile
            device = self._device(event.sender, session.sender_key)
        if device is None:
            return SenderTrust(False, UNKNOWN_DEVICE)
        found = SenderTrust(False, "", device.id, device.display_name or None)
        if device.ed25519 != session.ed25519 or device.curve25519 != sender_key:
            return _with(found, KEYS_MISMATCH)
        chain = list(session.forwarding_chain)
        if chain and not await self._from_owner(room_id, sender_key, session_id):
            return _with(found, FORWARDED)
        if client.olm is not None and client.olm.is_device_blacklisted(device) and self._devices.mode != CROSS_SIGNED:
            return _with(found, BLACKLISTED)
        if self._devices.mode != CROSS_SIGNED:
            return _with(found, "known_device", trusted=True)
        signed = (await self._devices.signed([event.sender]))[event.sender]
        if device.id not in signed:  # before refusing: the pins as they are now (an accept just made)
            signed = (await self._devices.signed([event.sender], fresh=True))[event.sender]
        if device.id in signed:
            return _with(found, "cross_signed", trusted=True)
        pins = self._devices.pins
        if pins is not None and await pins.pending(event.sender) is not None:
            return _with(found, IDENTITY_CHANGED)
        return _with(found, NOT_CROSS_SIGNED)

    async def _from_owner(self, room_id: str, sender_key: str, session_id: str) -> bool:
        if nio_private.forwarded_by_owner(self._client, room_id, sender_key, session_id):
            return True
        return self._remembered is not None and await self._remembered(room_id, sender_key, session_id)

    def _device(self, user_id: str, curve25519: str) -> Any:
        olm = self._client.olm
        if olm is None:
            return None
        for device in olm.device_store.active_user_devices(user_id):
            if device.curve25519 == curve25519:
                return device
        return None


def _with(found: SenderTrust, reason: str, trusted: bool = False) -> SenderTrust:
    return SenderTrust(trusted, reason, found.device_id, found.device_name)
