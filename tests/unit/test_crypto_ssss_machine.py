"""bot.matrix.crypto.ssss.machine: the cross-signing secrets stored in account data and read
back with the recovery key (against a fake account-data store)."""

from __future__ import annotations

import pytest
from crypto_fakes import FakeClient

from bot.matrix.crypto.cross_signing_key import ROLES, CrossSigningKeys
from bot.matrix.crypto.errors import SecretStorageError, WrongRecoveryKey
from bot.matrix.crypto.ssss.machine import (
    read_cross_signing_keys,
    secret_storage_holds,
    store_secrets,
)
from bot.matrix.crypto.ssss.types import DEFAULT_KEY_TYPE, KEY_TYPE_PREFIX, SECRET_NAMES

RECOVERY = bytes(range(32))


async def test_stored_secrets_read_back_with_the_recovery_key():
    client = FakeClient()
    keys = CrossSigningKeys.generate(client.user_id)
    await store_secrets(client, keys, RECOVERY, "KID")
    assert client.account_data[DEFAULT_KEY_TYPE] == {"key": "KID"}
    assert set(client.account_data[KEY_TYPE_PREFIX + "KID"]) == {"name", "algorithm", "iv", "mac"}
    assert await secret_storage_holds(client, "KID")
    key_id, back = await read_cross_signing_keys(client, RECOVERY)
    assert key_id == "KID"
    for role in ROLES:
        assert back.seed(role) == keys.seed(role)


async def test_the_default_key_is_written_last():
    client = FakeClient()
    await store_secrets(client, CrossSigningKeys.generate(client.user_id), RECOVERY, "KID")
    written = [path.rsplit("/", 1)[1] for method, path, *_ in client.calls if method == "PUT"]
    assert written[-1] == DEFAULT_KEY_TYPE
    assert written[0] == KEY_TYPE_PREFIX + "KID"


async def test_holds_is_false_when_anything_is_missing():
    client = FakeClient()
    assert not await secret_storage_holds(client, "KID")
    await store_secrets(client, CrossSigningKeys.generate(client.user_id), RECOVERY, "KID")
    assert not await secret_storage_holds(client, "OTHER")
    del client.account_data[SECRET_NAMES["user_signing"]]
    assert not await secret_storage_holds(client, "KID")


async def test_a_wrong_recovery_key_is_told_apart_from_missing_storage():
    client = FakeClient()
    with pytest.raises(SecretStorageError, match="no default key"):
        await read_cross_signing_keys(client, RECOVERY)
    await store_secrets(client, CrossSigningKeys.generate(client.user_id), RECOVERY, "KID")
    with pytest.raises(WrongRecoveryKey, match="not the one protecting"):
        await read_cross_signing_keys(client, b"\x09" * 32)
    # Without a key check in the description, the MAC of each secret still catches it.
    info = client.account_data[KEY_TYPE_PREFIX + "KID"]
    client.account_data[KEY_TYPE_PREFIX + "KID"] = {"algorithm": info["algorithm"]}
    with pytest.raises(WrongRecoveryKey, match="cannot be decrypted"):
        await read_cross_signing_keys(client, b"\x09" * 32)
    del client.account_data[SECRET_NAMES["master"]]
    with pytest.raises(SecretStorageError, match="has no m.cross_signing.master"):
        await read_cross_signing_keys(client, RECOVERY)
