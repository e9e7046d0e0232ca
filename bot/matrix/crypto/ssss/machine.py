"""Storing and reading the cross-signing secrets in server-side secret storage
(account data), under one secret storage key that becomes the default."""

from __future__ import annotations

from typing import Any

from bot.matrix.crypto.api import get_account_data, put_account_data
from bot.matrix.crypto.cross_signing_key import ROLES, CrossSigningKeys
from bot.matrix.crypto.encoding import b64decode, b64encode
from bot.matrix.crypto.errors import SecretStorageError, WrongRecoveryKey
from bot.matrix.crypto.ssss.key import check_secret_storage_key, decrypt_secret, encrypt_secret
from bot.matrix.crypto.ssss.key import make_key_check
from bot.matrix.crypto.ssss.types import (
    DEFAULT_KEY_TYPE,
    KEY_TYPE_PREFIX,
    SECRET_NAMES,
    SECRET_STORAGE_ALGORITHM,
)

__all__ = ["read_cross_signing_keys", "secret_storage_holds", "store_secrets"]


async def store_secrets(
    client: Any, keys: CrossSigningKeys, recovery: bytes, key_id: str
) -> None:
    """Publish the key description, the three encrypted seeds, then the default key."""
    description = {
        "name": "carebot recovery key",
        "algorithm": SECRET_STORAGE_ALGORITHM,
        **make_key_check(recovery),
    }
    await put_account_data(client, KEY_TYPE_PREFIX + key_id, description)
    for role in ROLES:
        name = SECRET_NAMES[role]
        encrypted = encrypt_secret(recovery, name, b64encode(keys.seed(role)))
        await put_account_data(client, name, {"encrypted": {key_id: encrypted}})
    await put_account_data(client, DEFAULT_KEY_TYPE, {"key": key_id})


async def secret_storage_holds(client: Any, key_id: str) -> bool:
    """Whether secret storage has our key as default and all three secrets under it."""
    default = await get_account_data(client, DEFAULT_KEY_TYPE)
    if (default or {}).get("key") != key_id:
        return False
    if await get_account_data(client, KEY_TYPE_PREFIX + key_id) is None:
        return False
    for role in ROLES:
        content = await get_account_data(client, SECRET_NAMES[role])
        if key_id not in ((content or {}).get("encrypted") or {}):
            return False
    return True


async def read_cross_signing_keys(
    client: Any, recovery: bytes
) -> tuple[str, CrossSigningKeys]:
    """(default key id, the three keys) decrypted from secret storage with ``recovery``.

    Raises :class:`WrongRecoveryKey` when the key does not open the storage, and
    :class:`SecretStorageError` when the storage is missing or malformed.
    """
    user_id = client.user_id
    default = await get_account_data(client, DEFAULT_KEY_TYPE)
    key_id = (default or {}).get("key")
    if not isinstance(key_id, str) or not key_id:
        raise SecretStorageError(
            f"{user_id} has no secret storage (no default key) to recover from"
        )
    key_info = await get_account_data(client, KEY_TYPE_PREFIX + key_id)
    if key_info is None:
        raise SecretStorageError(f"the secret storage key {key_id} is not described on the server")
    if not check_secret_storage_key(recovery, key_info):
        raise WrongRecoveryKey(
            f"this recovery key is valid but is not the one protecting {user_id}'s secret "
            f"storage (key {key_id}); use the recovery-key.txt written when this identity "
            "was created"
        )

    seeds: dict[str, bytes] = {}
    for role in ROLES:
        name = SECRET_NAMES[role]
        content = await get_account_data(client, name)
        enc = ((content or {}).get("encrypted") or {}).get(key_id)
        if enc is None:
            raise SecretStorageError(f"secret storage has no {name} encrypted with key {key_id}")
        try:
            plain = decrypt_secret(recovery, name, enc)
        except SecretStorageError as e:
            raise WrongRecoveryKey(
                f"{name} cannot be decrypted with this recovery key ({e})"
            ) from None
        try:
            seeds[role] = b64decode(plain.decode("ascii"))
        except (UnicodeDecodeError, ValueError) as e:
            raise SecretStorageError(f"{name} in secret storage is not a base64 key") from e
    keys = CrossSigningKeys(user_id, seeds["master"], seeds["self_signing"], seeds["user_signing"])
    del seeds
    return key_id, keys
