"""bot.matrix.crypto.recover_cli: `carebot recover` checks its inputs before connecting."""

from __future__ import annotations

from types import SimpleNamespace

from crypto_vectors import RFC7748_RECOVERY

from bot.matrix.crypto.recover_cli import main_recover


def test_main_recover_reports_a_typo_before_anything_else(tmp_path, capsys):
    path = tmp_path / "recovery-key.txt"
    path.write_text(RFC7748_RECOVERY[:-1] + "e\n")
    assert main_recover(SimpleNamespace(config=None, recovery_key_file=path)) == 2
    assert "typo" in capsys.readouterr().err
    assert main_recover(SimpleNamespace(config=None, recovery_key_file=tmp_path / "no")) == 2
    path.write_text(RFC7748_RECOVERY + "\n")
    missing_config = tmp_path / "missing.yaml"
    assert main_recover(SimpleNamespace(config=missing_config, recovery_key_file=path)) == 2
