"""Files on disk: private from creation; the storage directory 0700; the recovery key never
left beside the cross-signing keys without a loud warning at every start."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
import structlog

from bot.matrix import crypto as xsign
from bot.matrix.client import Session, save_session
from bot.matrix.crypto.files import private_dir


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_session_file_is_created_0600_even_over_a_stale_world_readable_temporary(tmp_path, monkeypatch):
    stale = tmp_path / "session.json.tmp"
    stale.write_text("old")
    os.chmod(stale, 0o644)
    created: list[tuple[str, int, int]] = []
    real_open = os.open

    def recording_open(path, flags, mode=0o777, *a, **kw):  # type: ignore[no-untyped-def]
        created.append((str(path), flags, mode))
        return real_open(path, flags, mode, *a, **kw)

    monkeypatch.setattr(os, "open", recording_open)
    save_session(tmp_path / "session.json", Session("https://hs", "@b:hs", "DEV", "secret-token"))
    assert _mode(tmp_path / "session.json") == 0o600
    (path, flags, mode) = created[-1]
    assert mode == 0o600 and flags & os.O_CREAT and flags & os.O_EXCL, created  # born 0600, never reused
    assert "secret-token" in (tmp_path / "session.json").read_text()


def test_an_existing_storage_directory_is_tightened_to_0700(tmp_path):
    storage = tmp_path / "data"
    storage.mkdir(mode=0o755)
    os.chmod(storage, 0o755)
    assert private_dir(storage) is True
    assert _mode(storage) == 0o700
    assert private_dir(storage) is False
    fresh = tmp_path / "new" / "data"
    assert private_dir(fresh) is False and _mode(fresh) == 0o700


def test_carebot_run_sets_a_private_umask_before_anything(tmp_path):
    from bot.runner import main_run

    previous = os.umask(0o022)
    try:
        assert main_run(SimpleNamespace(config=tmp_path / "missing.yaml")) == 2
        assert os.umask(0o022) == 0o077
    finally:
        os.umask(previous)


async def _start(storage: Path, monkeypatch: pytest.MonkeyPatch, just_created: bool) -> list[dict]:
    """The identity step of one start of the bot, with the server part replaced."""
    from bot.runtime.runtime import CareBot

    status = xsign.CrossSigningStatus(
        "@b:hs", "DEV", "M", "S", "U", True, recovery_key_path=storage / xsign.RECOVERY_KEY_FILE if just_created else None
    )

    async def ensure(client, password, where):  # type: ignore[no-untyped-def]
        return status

    monkeypatch.setattr(xsign, "ensure_cross_signing", ensure)
    bot = CareBot(SimpleNamespace(storage=SimpleNamespace(path=str(storage))), lambda: "pw")  # type: ignore[arg-type]
    with structlog.testing.capture_logs() as logs:
        await bot._setup_identity(object())  # noqa: SLF001
    return [e for e in logs if e["log_level"] == "warning"]


async def test_the_recovery_key_left_beside_the_keys_is_warned_about_at_every_start_until_removed(tmp_path, monkeypatch):
    storage = tmp_path / "data"
    storage.mkdir()
    (storage / xsign.CROSS_SIGNING_FILE).write_text("{}")
    key = storage / xsign.RECOVERY_KEY_FILE
    key.write_text("EsT…\n")

    first = await _start(storage, monkeypatch, just_created=True)
    assert [e["event"] for e in first] == ["identity.created"]
    for _ in range(2):  # every later start, loudly
        again = await _start(storage, monkeypatch, just_created=False)
        assert [e["event"] for e in again] == ["identity.recovery_key_on_disk"], again
        assert again[0]["recovery_key_file"] == str(key) and "delete" in again[0]["advice"]
    key.unlink()
    assert await _start(storage, monkeypatch, just_created=False) == []
