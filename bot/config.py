"""The bot's configuration file: parsed once into frozen, typed objects.

Only the contract keys (homeserver.url, bot.user_id, storage.path, roster.path, policies.path)
are required; everything else has a default. Unknown keys are errors. Relative paths are
resolved against the directory of the config file. See config.example.yaml.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator

from bot.care.roster import check_mxid
from bot.yamlutil import ConfigError, ConfigErrors, YamlDoc, load_yaml, validate

PASSWORD_ENV = "CAREBOT_PASSWORD"


def _resolve(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    value = value.expanduser()
    return (Path(base) / value) if base is not None and not value.is_absolute() else value


def _url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"'{value}' is not an http(s) URL. Write it like 'https://matrix.clinic.example'.")
    return value.rstrip("/")


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty. Give it a value.")
    return value


RelPath = Annotated[Path, AfterValidator(_resolve)]


def _postgres_url(value: str) -> str:
    if not value.startswith(("postgresql://", "postgres://")):
        raise ValueError(
            f"'{value}' is not a PostgreSQL URL. Write it like 'postgresql://carebot@db.clinic.example/carebot' "
            "(password in PGPASSWORD or a .pgpass file, not here), or remove the key to use SQLite in storage.path."
        )
    return value


def _schema_name(value: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
        raise ValueError(f"'{value}' is not a schema name: use lower-case letters, digits and '_' (at most 63).")
    return value


def _listen(value: str) -> str:
    from bot.ops.server import parse_listen

    parse_listen(value)
    return value


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HomeserverConfig(_Model):
    url: Annotated[str, AfterValidator(_url)]


class BotConfig(_Model):
    user_id: Annotated[str, AfterValidator(check_mxid)]
    password: str | None = None
    password_file: RelPath | None = None
    device_name: Annotated[str, AfterValidator(_non_empty)] = "carebot"
    # Roster ids of the practitioners this bot account serves (several bots, one PostgreSQL);
    # unset: all of the roster's practitioners.
    practitioners: tuple[Annotated[str, AfterValidator(_non_empty)], ...] | None = None


class PathConfig(_Model):
    path: RelPath


class StorageConfig(_Model):
    path: RelPath
    # PostgreSQL instead of SQLite in `path` (which still holds the crypto store and session).
    database: Annotated[str, AfterValidator(_postgres_url)] | None = None
    # The PostgreSQL schema of this bot's tables; default `carebot_<bot localpart>`, so that
    # several bot accounts share one database without sharing tables.
    db_schema: Annotated[str, AfterValidator(_schema_name)] | None = Field(None, alias="schema")


class MetricsConfig(_Model):
    # host:port of /metrics, /healthz and /readyz, e.g. "127.0.0.1:9464"; unset: no endpoint.
    listen: Annotated[str, AfterValidator(_listen)] | None = None


class LogConfig(_Model):
    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


class LimitsConfig(_Model):
    max_message_chars: int = Field(4000, ge=100)
    flood_messages_per_minute: int = Field(10, ge=1)
    # A practitioner clearing a list of renewals from the desk works faster than any patient
    # writes; the limit is there against a runaway script, not against a busy morning.
    practitioner_commands_per_minute: int = Field(60, ge=1)
    undecryptable_wait_s: float = Field(30.0, ge=1, le=3600)


class SyncConfig(_Model):
    timeout_ms: int = Field(30000, ge=1000, le=300000)
    backoff_max_s: float = Field(30.0, ge=1, le=3600)


class RoomsConfig(_Model):
    max_concurrent_creations: int = Field(4, ge=1, le=64)


def _timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone '{value}'. Use an IANA name such as 'Europe/Paris'.") from None
    return value


def _country(value: str) -> str:
    from bot.desk.calendar import check_country

    problem = check_country(value, None)
    if problem:
        raise ValueError(problem)
    return value


class DeskConfig(_Model):
    """The practitioner desk (see the README, "For practitioners: the desk")."""

    enabled: bool = True
    digest_time: dt.time = dt.time(8, 0)  # local time of the morning digest (sent until 2 h later)
    timezone: Annotated[str, AfterValidator(_timezone)] = "Europe/Paris"
    reminder_business_days: int = Field(2, ge=1, le=30)
    holidays_country: Annotated[str, AfterValidator(_country)] = "FR"
    holidays_subdivision: str | None = None
    # What pair-room names show of the patient (room names are NOT encrypted):
    # patient_id (default) | initials | full_name (private, unfederated homeservers only).
    room_names: Literal["patient_id", "initials", "full_name"] = "patient_id"

    @field_validator("holidays_subdivision")
    @classmethod
    def _subdivision_known(cls, value: str | None, info: ValidationInfo) -> str | None:
        country = info.data.get("holidays_country")
        if value is not None and country is not None:
            from bot.desk.calendar import check_country

            problem = check_country(country, value)
            if problem:
                raise ValueError(problem)
        return value

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


def _fhir_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"'{value}' is not an http(s) URL. Write the FHIR server's base URL, like 'https://ehr.clinic.example/fhir/R4'.")
    return value.rstrip("/")


class SmartConfig(_Model):
    """SMART Backend Services: client_credentials with a private_key_jwt assertion."""

    token_url: Annotated[str, AfterValidator(_url)]
    client_id: Annotated[str, AfterValidator(_non_empty)]
    private_key_file: RelPath
    algorithm: Literal["RS384", "ES384"] = "RS384"
    key_id: str | None = None
    scope: Annotated[str, AfterValidator(_non_empty)] = "system/*.read system/Task.write"


class FhirConfig(_Model):
    """The clinic bridge (HL7 FHIR R4): roster from the server, requests mirrored as Tasks."""

    url: Annotated[str, AfterValidator(_fhir_url)]
    token_file: RelPath | None = None
    smart: SmartConfig | None = None
    poll_s: float = Field(60.0, ge=1, le=86400)
    timeout_s: float = Field(30.0, ge=1, le=600)
    page_size: int = Field(500, ge=1, le=5000)

    @model_validator(mode="after")
    def _one_auth(self) -> "FhirConfig":
        if self.token_file is not None and self.smart is not None:
            raise ValueError("set either token_file or smart, not both: they are two ways to log in to the FHIR server.")
        return self


class Config(_Model):
    homeserver: HomeserverConfig
    bot: BotConfig
    storage: StorageConfig
    roster: PathConfig
    policies: PathConfig
    locale: Literal["fr", "en"] = "fr"
    trust: Literal["tofu", "cross-signed"] = "tofu"
    log: LogConfig = LogConfig()
    limits: LimitsConfig = LimitsConfig()
    sync: SyncConfig = SyncConfig()
    rooms: RoomsConfig = RoomsConfig()
    desk: DeskConfig = DeskConfig()
    metrics: MetricsConfig = MetricsConfig()
    retention_days: int | None = Field(None, ge=1)
    fhir: FhirConfig | None = None

    _doc: YamlDoc | None = PrivateAttr(default=None)

    @property
    def source_file(self) -> str:
        """The config file as named in errors ('<memory>' when not loaded from a file)."""
        return self._doc.file if self._doc is not None else "<memory>"

    def error(self, key: str, message: str) -> ConfigError:
        """A ConfigError located at the dotted `key` of this config file."""
        path = tuple(key.split("."))
        line = self._doc.line_for(path) if self._doc is not None else None
        return ConfigError(self.source_file, line, key, message)


def load_config(path: str | Path) -> Config:
    """Load and validate the config file; raises ConfigErrors listing every problem."""
    path = Path(path)
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise ConfigErrors([doc.error((), "the config file must be a block of 'key: value' lines. See config.example.yaml.")])
    config: Config = validate(Config, doc, context={"base_dir": path.resolve().parent})
    config._doc = doc
    return config


def resolve_password(config: Config, env: Mapping[str, str] | None = None) -> str:
    """The bot's password: env CAREBOT_PASSWORD, then bot.password_file, then bot.password."""
    env = os.environ if env is None else env
    from_env = env.get(PASSWORD_ENV, "")
    if from_env:
        return from_env
    if config.bot.password_file is not None:
        file = config.bot.password_file
        try:
            secret = file.read_text(encoding="utf-8").strip("\r\n")
        except FileNotFoundError:
            raise ConfigErrors([config.error("bot.password_file", f"file not found: {file}. Create it or fix the path.")]) from None
        except OSError as exc:
            raise ConfigErrors([config.error("bot.password_file", f"cannot read {file} ({exc.strerror}). Check its permissions.")]) from None
        if not secret:
            raise ConfigErrors([config.error("bot.password_file", f"{file} is empty. Put the bot's password in it.")])
        return secret
    if config.bot.password:
        return config.bot.password
    raise ConfigErrors(
        [config.error("bot.password", f"no password for the bot. Set the {PASSWORD_ENV} environment variable or bot.password_file.")]
    )


__all__ = [
    "BotConfig",
    "Config",
    "DeskConfig",
    "FhirConfig",
    "HomeserverConfig",
    "LimitsConfig",
    "LogConfig",
    "MetricsConfig",
    "PASSWORD_ENV",
    "PathConfig",
    "RoomsConfig",
    "SmartConfig",
    "StorageConfig",
    "SyncConfig",
    "load_config",
    "resolve_password",
]
