"""Cross-signing, secret storage and recovery against a real Synapse."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from nio import AsyncClient, AsyncClientConfig, LoginResponse

from bot.devserver import Homeserver
from bot.matrix.crypto import (
    CROSS_SIGNING_FILE,
    RECOVERY_KEY_FILE,
    CrossSigningError,
    CrossSigningKeys,
    IdentityExists,
    RecoveryKeyError,
    WrongRecoveryKey,
    _query_keys,
    cross_signed_devices,
    decode_recovery_key,
    encode_recovery_key,
    ensure_cross_signing,
    read_recovery_key_file,
    recover_identity,
    upload_cross_signing_keys,
    verify_json_signature,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def login(homeserver: Homeserver, tmp_path: Path):
    """`await login(user_id, password)` -> an encryption-ready nio client on a new device."""
    clients: list[AsyncClient] = []

    async def make(user_id: str, password: str) -> AsyncClient:
        store = tmp_path / f"store{len(clients)}"
        store.mkdir()
        client = AsyncClient(
            homeserver.url,
            user_id,
            store_path=str(store),
            config=AsyncClientConfig(store_sync_tokens=True, encryption_enabled=True),
        )
        clients.append(client)
        resp = await client.login(password, device_name="carebot-test")
        assert isinstance(resp, LoginResponse), resp
        assert client.olm is not None
        if client.should_upload_keys:
            await client.keys_upload()
        return client

    yield make
    for c in clients:
        await c.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_cross_signing_lifecycle(new_user, login, tmp_path: Path) -> None:
    user_id, password = new_user("xsbot")
    bot = await login(user_id, password)
    storage = tmp_path / "bot-state"

    # First start: create, publish, store in SSSS, sign the device.
    status = await ensure_cross_signing(bot, password, storage)
    assert status.created and status.device_signed
    assert status.recovery_key_path == storage / RECOVERY_KEY_FILE
    assert _mode(storage / RECOVERY_KEY_FILE) == 0o600
    assert _mode(storage / CROSS_SIGNING_FILE) == 0o600
    recovery_key = read_recovery_key_file(storage / RECOVERY_KEY_FILE)
    assert len(decode_recovery_key(recovery_key)) == 32

    q = await _query_keys(bot, [user_id])
    master_obj = q["master_keys"][user_id]
    ssk_obj = q["self_signing_keys"][user_id]
    master = status.master_key
    ssk = status.self_signing_key
    assert master_obj["keys"] == {f"ed25519:{master}": master}
    assert ssk_obj["keys"] == {f"ed25519:{ssk}": ssk}
    assert verify_json_signature(ssk_obj, master, user_id, f"ed25519:{master}")
    device = q["device_keys"][user_id][bot.device_id]
    assert verify_json_signature(device, ssk, user_id, f"ed25519:{ssk}")
    assert verify_json_signature(
        master_obj, bot.olm.account.identity_keys["ed25519"], user_id, f"ed25519:{bot.device_id}"
    ), "the master key should carry the device's signature too"

    assert await cross_signed_devices(bot, [user_id]) == {user_id: {bot.device_id}}
    assert await cross_signed_devices(bot, [user_id], {user_id: "someoneelse"}) == {
        user_id: set()
    }

    # Restart: idempotent, same identity, nothing new written.
    key_file_before = (storage / RECOVERY_KEY_FILE).read_text()
    calls: list[tuple[str, str]] = []
    real_send = bot.send

    async def spy(method, path, *args, **kwargs):
        calls.append((method, path))
        return await real_send(method, path, *args, **kwargs)

    bot.send = spy
    again = await ensure_cross_signing(bot, password, storage)
    bot.send = real_send
    assert [c for c in calls if c[0] != "POST" or not c[1].endswith("/keys/query")] == [], calls
    assert not again.created and again.device_signed
    assert again.master_key == master and again.recovery_key_path is None
    assert (storage / RECOVERY_KEY_FILE).read_text() == key_file_before
    q2 = await _query_keys(bot, [user_id])
    assert q2["master_keys"][user_id]["keys"] == master_obj["keys"]

    # Lost local keys: refuse to reset, point at `carebot recover`.
    (storage / CROSS_SIGNING_FILE).unlink()
    with pytest.raises(IdentityExists, match="carebot recover --recovery-key-file"):
        await ensure_cross_signing(bot, password, storage)
    q3 = await _query_keys(bot, [user_id])
    assert q3["master_keys"][user_id]["keys"] == master_obj["keys"]

    # A new device (new store, new state dir) recovers with the recovery key file.
    bot2 = await login(user_id, password)
    assert bot2.device_id != bot.device_id
    storage2 = tmp_path / "bot-state-2"

    with pytest.raises(RecoveryKeyError, match="typo"):
        typo = recovery_key[:-1] + ("a" if recovery_key[-1] != "a" else "b")
        await recover_identity(bot2, typo, storage2)
    with pytest.raises(WrongRecoveryKey, match="not the one"):
        await recover_identity(bot2, encode_recovery_key(b"\x42" * 32), storage2)
    assert not (storage2 / CROSS_SIGNING_FILE).exists()

    rec = await recover_identity(bot2, recovery_key, storage2)
    assert rec.recovered and rec.device_signed and not rec.created
    assert rec.master_key == master and rec.self_signing_key == ssk
    assert _mode(storage2 / CROSS_SIGNING_FILE) == 0o600
    assert await cross_signed_devices(bot2, [user_id]) == {
        user_id: {bot.device_id, bot2.device_id}
    }
    # The recovered state dir is a normal one: a restart there is a no-op.
    after = await ensure_cross_signing(bot2, password, storage2)
    assert after.master_key == master and not after.created and after.device_signed


async def test_other_users_devices_and_unsigned_devices(new_user, login, tmp_path: Path) -> None:
    alice_id, alice_pw = new_user("xsalice")
    bob_id, bob_pw = new_user("xsbob")
    alice = await login(alice_id, alice_pw)
    alice_other = await login(alice_id, alice_pw)  # never signed
    bob = await login(bob_id, bob_pw)  # no cross-signing at all

    await ensure_cross_signing(alice, alice_pw, tmp_path / "alice")
    seen_by_bob = await cross_signed_devices(bob, [alice_id, bob_id])
    assert seen_by_bob == {alice_id: {alice.device_id}, bob_id: set()}
    assert alice_other.device_id not in seen_by_bob[alice_id]
    assert await cross_signed_devices(bob, []) == {}


async def test_replacing_keys_needs_password_uia(new_user, login, tmp_path: Path) -> None:
    """Synapse lets the first upload through; a replacement needs the password (UIA)."""
    user_id, password = new_user("xsuia")
    bot = await login(user_id, password)
    status = await ensure_cross_signing(bot, password, tmp_path / "s")

    other = CrossSigningKeys.generate(user_id)
    with pytest.raises(CrossSigningError, match="rejected the bot's password"):
        await upload_cross_signing_keys(bot, other, "wrong password")
    assert (await _query_keys(bot, [user_id]))["master_keys"][user_id]["keys"] == {
        f"ed25519:{status.master_key}": status.master_key
    }
    asked = await upload_cross_signing_keys(bot, other, password)
    assert asked is True
    q = await _query_keys(bot, [user_id])
    assert q["master_keys"][user_id]["keys"] == {
        f"ed25519:{other.master_public}": other.master_public
    }
    # The old local keys no longer match: the bot refuses to start, it does not re-reset.
    with pytest.raises(IdentityExists, match="replaced elsewhere"):
        await ensure_cross_signing(bot, password, tmp_path / "s")
    # And secret storage still holds the old keys: recovery is refused, not half-done.
    key = read_recovery_key_file(tmp_path / "s" / RECOVERY_KEY_FILE)
    with pytest.raises(CrossSigningError, match="does not match the published one"):
        await recover_identity(bot, key, tmp_path / "s2")


@pytest.mark.parametrize("lose_secret_storage", [False, True])
async def test_interrupted_first_start_resumes_with_the_same_keys(
    new_user, login, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lose_secret_storage: bool
) -> None:
    """Keys saved locally but never published (crash, network): the next start publishes
    those same keys; if secret storage was lost meanwhile, it is rebuilt with a new key."""
    import bot.matrix.crypto as crypto
    from bot.matrix.crypto import cross_signing

    user_id, password = new_user("xsresume")
    bot = await login(user_id, password)
    storage = tmp_path / "s"

    async def boom(*args, **kwargs):
        raise CrossSigningError("network down")

    monkeypatch.setattr(cross_signing, "upload_cross_signing_keys", boom)
    with pytest.raises(CrossSigningError, match="network down"):
        await ensure_cross_signing(bot, password, storage)
    monkeypatch.undo()
    local = json.loads((storage / CROSS_SIGNING_FILE).read_text())
    first_key = read_recovery_key_file(storage / RECOVERY_KEY_FILE)
    assert user_id not in (await _query_keys(bot, [user_id])).get("master_keys", {})

    if lose_secret_storage:
        await crypto._put_account_data(bot, "m.secret_storage.default_key", {})
    status = await ensure_cross_signing(bot, password, storage)
    assert status.created and status.device_signed
    assert status.master_key == local["master"]["public"]
    assert status.recovery_key_path == storage / RECOVERY_KEY_FILE
    key = read_recovery_key_file(storage / RECOVERY_KEY_FILE)
    replaced = list(storage.glob(f"{RECOVERY_KEY_FILE}.replaced-*"))
    if lose_secret_storage:
        assert key != first_key and replaced, "a new key, the old one kept aside"
    else:
        assert key == first_key and not replaced
    rec = await recover_identity(bot, key, tmp_path / "s2")
    assert rec.master_key == status.master_key
