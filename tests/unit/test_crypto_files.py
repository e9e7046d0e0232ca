"""bot.matrix.crypto.files: private (0600) files and the recovery key file."""

from __future__ import annotations

import stat

import pytest
from crypto_vectors import RFC7748_RECOVERY

from bot.matrix.crypto.errors import RecoveryKeyError
from bot.matrix.crypto.files import (
    RECOVERY_KEY_FILE,
    read_recovery_key_file,
    write_private,
    write_recovery_key,
)


def test_read_recovery_key_file_skips_comments(tmp_path):
    path = tmp_path / "k.txt"
    path.write_text("# a comment\n\n  " + RFC7748_RECOVERY + "  \n")
    assert read_recovery_key_file(path) == RFC7748_RECOVERY
    path.write_text("# nothing\n")
    with pytest.raises(RecoveryKeyError):
        read_recovery_key_file(path)


def test_write_private_creates_a_0600_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "deep" / "secret.json"
    write_private(path, "one")
    write_private(path, "two")
    assert path.read_text() == "two"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret.json"]


def test_write_recovery_key_keeps_the_previous_key_beside_the_new_one(tmp_path):
    first = write_recovery_key(tmp_path, RFC7748_RECOVERY, "@bot:example.org")
    assert first == tmp_path / RECOVERY_KEY_FILE
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert read_recovery_key_file(first) == RFC7748_RECOVERY
    assert "@bot:example.org" in first.read_text()
    write_recovery_key(tmp_path, "EsTj 3yST", "@bot:example.org")
    assert read_recovery_key_file(first) == "EsTj 3yST"
    (replaced,) = tmp_path.glob(f"{RECOVERY_KEY_FILE}.replaced-*")
    assert read_recovery_key_file(replaced) == RFC7748_RECOVERY


def test_read_recovery_key_file_names_the_file_when_empty(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("")
    with pytest.raises(RecoveryKeyError, match="empty.txt"):
        read_recovery_key_file(path)
