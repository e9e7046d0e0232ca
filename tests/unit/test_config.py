from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_config, resolve_password
from bot.yamlutil import ConfigErrors

from unit_helpers import CONFIG, REPO, Setup, write


def errors_of(path: Path) -> list:
    with pytest.raises(ConfigErrors) as info:
        load_config(path)
    return list(info.value.errors)


def test_minimal_contract_config_loads_with_defaults(setup: Setup):
    config = load_config(setup.config)
    assert config.homeserver.url == "http://127.0.0.1:8008"
    assert config.bot.device_name == "carebot"
    assert config.locale == "fr"
    assert config.trust == "tofu"
    assert config.log.format == "auto" and config.log.level == "info"
    assert config.limits.max_message_chars == 4000
    assert config.limits.flood_messages_per_minute == 10
    assert config.sync.timeout_ms == 30000
    assert config.retention_days is None


def test_relative_paths_resolve_against_the_config_directory(setup: Setup):
    config = load_config(setup.config)
    assert config.roster.path == setup.dir.resolve() / "roster.yaml"
    assert config.policies.path == setup.dir.resolve() / "policies"
    assert config.storage.path == setup.dir.resolve() / "data"


def test_config_is_frozen(setup: Setup):
    config = load_config(setup.config)
    with pytest.raises(Exception):
        config.locale = "en"  # type: ignore[misc]


def test_example_config_is_valid():
    config = load_config(REPO / "config.example.yaml")
    assert config.bot.user_id == "@carebot:clinic.example"


def test_unknown_key_names_file_line_and_allowed_keys(tmp_path: Path):
    f = write(tmp_path / "c.yaml", CONFIG.replace("  device_name:", "  devise_name:"))
    (err,) = errors_of(f)
    assert err.file == str(f)
    assert err.line == 6
    assert err.key == "bot.devise_name"
    assert "unknown key 'devise_name'" in err.message and "device_name" in err.message


def test_wrong_types_are_all_reported_with_dotted_keys(tmp_path: Path):
    text = CONFIG.replace('locale: "fr"', 'locale: "de"\nsync:\n  timeout_ms: soon\nlimits:\n  max_message_chars: -1')
    errs = errors_of(write(tmp_path / "c.yaml", text))
    keys = {e.key for e in errs}
    assert keys == {"locale", "sync.timeout_ms", "limits.max_message_chars"}
    locale = next(e for e in errs if e.key == "locale")
    assert locale.line == 13 and "'fr'" in locale.message


def test_missing_required_key_is_reported(tmp_path: Path):
    text = CONFIG.replace('  user_id: "@carebot:clinic.example"\n', "")
    (err,) = errors_of(write(tmp_path / "c.yaml", text))
    assert err.key == "bot.user_id"
    assert err.line == 3  # the 'bot:' line
    assert "missing required key" in err.message


def test_bad_user_id_and_url_say_how_to_write_them(tmp_path: Path):
    text = CONFIG.replace('"@carebot:clinic.example"', '"carebot"').replace('"http://127.0.0.1:8008"', '"matrix.example"')
    errs = {e.key: e for e in errors_of(write(tmp_path / "c.yaml", text))}
    assert "@alice:clinic.example" in errs["bot.user_id"].message
    assert "https://" in errs["homeserver.url"].message


def test_broken_yaml_and_missing_file(tmp_path: Path):
    (err,) = errors_of(write(tmp_path / "c.yaml", "homeserver:\n  url: [oops\n"))
    assert err.line is not None and "invalid YAML" in err.message
    (err,) = errors_of(tmp_path / "absent.yaml")
    assert "file not found" in err.message


def test_empty_config_file_is_an_error(tmp_path: Path):
    (err,) = errors_of(write(tmp_path / "c.yaml", "# nothing\n"))
    assert "config.example.yaml" in err.message


def test_password_order_env_then_file_then_inline(tmp_path: Path):
    secret = write(tmp_path / "pw", "from-file\n")
    text = CONFIG.replace("password: null", 'password: "inline"\n  password_file: "./pw"')
    config = load_config(write(tmp_path / "c.yaml", text))
    assert resolve_password(config, {"CAREBOT_PASSWORD": "from-env"}) == "from-env"
    assert resolve_password(config, {}) == "from-file"
    secret.unlink()
    with pytest.raises(ConfigErrors) as info:
        resolve_password(config, {})
    (err,) = info.value.errors
    assert err.key == "bot.password_file" and err.line == 6 and "not found" in err.message
    inline = load_config(write(tmp_path / "c2.yaml", CONFIG.replace("password: null", 'password: "inline"')))
    assert resolve_password(inline, {}) == "inline"


def test_missing_password_names_the_key_and_the_fixes(setup: Setup):
    config = load_config(setup.config)
    with pytest.raises(ConfigErrors) as info:
        resolve_password(config, {})
    (err,) = info.value.errors
    assert err.key == "bot.password"
    assert err.file == str(setup.config) and err.line == 5
    assert "CAREBOT_PASSWORD" in err.message and "bot.password_file" in err.message


def test_desk_settings_have_defaults_and_bad_values_name_their_key(tmp_path: Path):
    import datetime as dt

    config = load_config(write(tmp_path / "ok.yaml", CONFIG))
    assert config.desk.enabled and config.desk.timezone == "Europe/Paris" and config.desk.digest_time == dt.time(8, 0)
    assert config.desk.reminder_business_days == 2 and config.desk.room_names == "patient_id"
    text = CONFIG + (
        "desk:\n  digest_time: breakfast\n  timezone: Mars/Olympus\n  reminder_business_days: 0\n"
        "  holidays_subdivision: '999'\n  room_names: everything\n"
    )
    errs = {e.key: e for e in errors_of(write(tmp_path / "bad.yaml", text))}
    assert set(errs) == {"desk.digest_time", "desk.timezone", "desk.reminder_business_days", "desk.holidays_subdivision", "desk.room_names"}
    assert "unknown time zone 'Mars/Olympus'" in errs["desk.timezone"].message and errs["desk.timezone"].line == text.splitlines().index("  timezone: Mars/Olympus") + 1
    assert "unknown subdivision '999' for FR" in errs["desk.holidays_subdivision"].message
    assert "57" in errs["desk.holidays_subdivision"].message
    bad_country = errors_of(write(tmp_path / "c.yaml", CONFIG + "desk:\n  holidays_country: ZZ\n"))
    assert [(e.key, "ISO 3166" in e.message) for e in bad_country] == [("desk.holidays_country", True)]
