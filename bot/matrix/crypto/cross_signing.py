"""The bot's cross-signing identity over its lifetime: create it on first start, reuse it
afterwards (:func:`ensure_cross_signing`), restore it from secret storage with the recovery
key (:func:`recover_identity`); and, for anyone, which devices are cross-signed
(:func:`cross_signed_devices`).

An existing identity on the server is never replaced silently: without the local keys the
bot refuses to start (:class:`IdentityExists`) until the admin runs ``carebot recover``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.matrix.crypto.api import query_keys, upload_cross_signing_keys
from bot.matrix.crypto.cross_signing_key import (
    CROSS_SIGNING_FILE,
    ROLES,
    CrossSigningKeys,
    load_local,
    local_key_id,
    save_local,
)
from bot.matrix.crypto.errors import CrossSigningError, IdentityExists
from bot.matrix.crypto.files import RECOVERY_KEY_FILE, write_recovery_key
from bot.matrix.crypto.key_query import devices_cross_signed_in, server_identity
from bot.matrix.crypto.own_device import own_query, require_olm, sign_own_device
from bot.matrix.crypto.ssss.key import decode_recovery_key, encode_recovery_key
from bot.matrix.crypto.ssss.machine import (
    read_cross_signing_keys,
    secret_storage_holds,
    store_secrets,
)
from bot.matrix.crypto.ssss.util import new_key_id

__all__ = [
    "CrossSigningStatus",
    "cross_signed_devices",
    "ensure_cross_signing",
    "recover_identity",
    "recover_with_client",
    "recovery_key_left_behind",
]


@dataclass(frozen=True)
class CrossSigningStatus:
    user_id: str
    device_id: str
    master_key: str
    self_signing_key: str
    user_signing_key: str
    device_signed: bool
    created: bool = False  # a new identity was published by this call
    recovered: bool = False  # the keys were just restored from secret storage
    recovery_key_path: Path | None = None  # only when the recovery key was just written


async def cross_signed_devices(
    client: Any,
    user_ids: Iterable[str],
    expected_master_keys: Mapping[str, str] | None = None,
) -> dict[str, set[str]]:
    """Per user, the device ids validly signed by that user's self-signing key, itself
    validly signed by the user's master key (all checked here, over canonical JSON).

    The master key itself is taken from the homeserver as-is (trust on first use is the
    caller's business): pass ``expected_master_keys`` (user id -> pinned master key) to get
    an empty set for a user whose master key has changed.
    """
    users = list(dict.fromkeys(user_ids))
    if not users:
        return {}
    query = await query_keys(client, users)
    return devices_cross_signed_in(query, users, expected_master_keys)


def recovery_key_left_behind(storage_dir: Path) -> Path | None:
    """The recovery key file, if it still lies beside the cross-signing keys it protects:
    whoever copies the storage directory then holds both."""
    key = Path(storage_dir) / RECOVERY_KEY_FILE
    return key if key.exists() and (Path(storage_dir) / CROSS_SIGNING_FILE).exists() else None


def _recover_hint(storage_dir: Path) -> str:
    return (
        "Restore it with: carebot recover --recovery-key-file /path/to/recovery-key.txt "
        f"(the file written when the identity was created; it restores {CROSS_SIGNING_FILE} "
        f"in {storage_dir}). The bot never resets an existing identity by itself."
    )


async def _protect_afresh(
    client: Any, keys: CrossSigningKeys, storage_dir: Path
) -> tuple[str, Path]:
    """Store ``keys`` under a new recovery key; save them locally; write the recovery key."""
    recovery = secrets.token_bytes(32)
    key_id = new_key_id()
    await store_secrets(client, keys, recovery, key_id)
    save_local(storage_dir, keys, key_id)
    path = write_recovery_key(storage_dir, encode_recovery_key(recovery), client.user_id)
    del recovery
    return key_id, path


async def ensure_cross_signing(
    client: Any, password: str, storage_dir: Path
) -> CrossSigningStatus:
    """Create the bot's cross-signing identity on first start; afterwards, only make sure the
    current device is signed. Raises :class:`IdentityExists` rather than replacing an identity
    it does not hold the keys of.
    """
    require_olm(client)
    storage_dir = Path(storage_dir)
    user_id = client.user_id
    query = await own_query(client)
    server = server_identity(query, user_id)
    local = load_local(storage_dir)
    if local is not None and local.user_id != user_id:
        raise CrossSigningError(
            f"{storage_dir / CROSS_SIGNING_FILE} belongs to {local.user_id}, not {user_id}"
        )

    if server["master"] is not None:
        if local is None:
            raise IdentityExists(
                f"{user_id} already has a cross-signing identity on the homeserver "
                f"(master key {server['master']}), but {storage_dir / CROSS_SIGNING_FILE} "
                f"is missing. {_recover_hint(storage_dir)}"
            )
        if local.master_public != server["master"]:
            raise IdentityExists(
                f"the cross-signing identity of {user_id} on the homeserver (master key "
                f"{server['master']}) is not the one in {storage_dir / CROSS_SIGNING_FILE} "
                f"(master key {local.master_public}); it was replaced elsewhere. "
                f"{_recover_hint(storage_dir)}"
            )
        if server["self_signing"] != local.self_signing_public:
            raise IdentityExists(
                f"the self-signing key of {user_id} on the homeserver is not the local one. "
                f"{_recover_hint(storage_dir)}"
            )
        signed = await sign_own_device(client, local, query)
        return _status(client, local, signed)

    # No identity on the server. Either a fresh start, or a previous start wrote its local
    # files but stopped before publishing: then publish those (the secrets are already in
    # secret storage, and the recovery key file already written).
    recovery_path: Path | None = None
    if local is None:
        keys = CrossSigningKeys.generate(user_id)
        _, recovery_path = await _protect_afresh(client, keys, storage_dir)
    else:
        keys = local
        key_id = local_key_id(storage_dir)
        if key_id and await secret_storage_holds(client, key_id):
            candidate = storage_dir / RECOVERY_KEY_FILE
            recovery_path = candidate if candidate.exists() else None
        else:
            # Secret storage lost (e.g. a wiped homeserver): protect the keys afresh.
            _, recovery_path = await _protect_afresh(client, keys, storage_dir)
    await upload_cross_signing_keys(client, keys, password)
    query = await query_keys(client, [user_id])
    if server_identity(query, user_id)["master"] != keys.master_public:
        raise CrossSigningError(
            "the homeserver accepted the cross-signing keys but does not show them"
        )
    signed = await sign_own_device(client, keys, query)
    return _status(client, keys, signed, created=True, recovery_key_path=recovery_path)


def _status(
    client: Any, keys: CrossSigningKeys, signed: bool, **extra: Any
) -> CrossSigningStatus:
    return CrossSigningStatus(
        user_id=client.user_id,
        device_id=client.device_id,
        master_key=keys.master_public,
        self_signing_key=keys.self_signing_public,
        user_signing_key=keys.user_signing_public,
        device_signed=signed,
        **extra,
    )


async def recover_identity(
    client: Any, recovery_key: str, storage_dir: Path
) -> CrossSigningStatus:
    """Restore the cross-signing private keys from secret storage with the recovery key,
    check them against the published identity, save them locally and sign this device.
    Never creates or uploads new keys.
    """
    require_olm(client)
    storage_dir = Path(storage_dir)
    user_id = client.user_id
    recovery = decode_recovery_key(recovery_key)  # RecoveryKeyError on typos
    key_id, keys = await read_cross_signing_keys(client, recovery)
    del recovery

    query = await own_query(client)
    server = server_identity(query, user_id)
    if server["master"] is None:
        raise CrossSigningError(
            f"{user_id} has no cross-signing identity on the homeserver: nothing to recover "
            "(start the bot normally to create one)"
        )
    for role in ROLES:
        if server[role] is not None and server[role] != keys.public(role):
            raise CrossSigningError(
                f"the {role} key in secret storage does not match the published one: the "
                "identity was reset without updating secret storage; it cannot be recovered"
            )
    save_local(storage_dir, keys, key_id)
    signed = await sign_own_device(client, keys, query)
    return _status(client, keys, signed, recovered=True)


async def recover_with_client(
    client: Any, recovery_key: str, storage_dir: Path
) -> CrossSigningStatus:
    """``carebot recover`` once the lead's code has a logged-in, encryption-loaded client."""
    return await recover_identity(client, recovery_key, Path(storage_dir))
