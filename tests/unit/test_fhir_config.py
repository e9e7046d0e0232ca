"""The `fhir:` config section: every error names the file, the line and the dotted key."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from unit_helpers import Setup

from bot.cli import cmd_check_config
from bot.config import load_config
from bot.yamlutil import ConfigErrors


def _with_fhir(setup: Setup, section: str) -> Path:
    setup.config.write_text(setup.config.read_text() + section)
    return setup.config


def _line(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), start=1) if text in line)


def _errors(path: Path) -> list[str]:
    with pytest.raises(ConfigErrors) as caught:
        load_config(path)
    return [str(e) for e in caught.value.errors]


def test_fhir_keys_are_optional_but_url(setup: Setup) -> None:
    config = load_config(_with_fhir(setup, "fhir:\n  url: 'https://ehr.example/fhir/'\n"))
    assert config.fhir is not None and config.fhir.url == "https://ehr.example/fhir" and config.fhir.poll_s == 60


def test_bad_fhir_values_name_file_line_and_key(setup: Setup) -> None:
    path = _with_fhir(setup, "fhir:\n  url: 'ehr.example'\n  poll_s: 0\n  smart:\n    token_url: 'https://a/token'\n    client_id: c\n    private_key_file: k.pem\n    algorithm: HS256\n")
    errors = _errors(path)
    assert f"{path}:{_line(path, 'ehr.example')}: fhir.url: 'ehr.example' is not an http(s) URL. Write the FHIR server's base URL, like 'https://ehr.clinic.example/fhir/R4'." in errors
    assert any(e.startswith(f"{path}:{_line(path, 'poll_s')}: fhir.poll_s:") for e in errors)
    assert any(e.startswith(f"{path}:{_line(path, 'HS256')}: fhir.smart.algorithm:") and "RS384" in e for e in errors)


def test_token_file_and_smart_together_are_refused(setup: Setup) -> None:
    path = _with_fhir(setup, "fhir:\n  url: 'https://ehr.example'\n  token_file: t\n  smart:\n    token_url: 'https://a/token'\n    client_id: c\n    private_key_file: k.pem\n")
    [error] = _errors(path)
    assert "fhir" in error and "either token_file or smart" in error


def test_check_config_with_fhir_does_not_need_the_roster_file(setup: Setup) -> None:
    path = _with_fhir(setup, "fhir:\n  url: 'https://ehr.example'\n")
    setup.roster.unlink()

    class Args:
        config = str(path)

    out, err = io.StringIO(), io.StringIO()
    assert cmd_check_config(Args(), out, err) == 0, err.getvalue()
    assert "carebot fhir check" in out.getvalue()
