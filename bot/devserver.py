"""A throwaway Synapse homeserver on loopback, for tests, `make run` and the benchmark.

Synapse comes from PyPI (the `test` extra) and runs as a child process with SQLite. Nothing
here is used in production: a clinic runs its own homeserver.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

# Generous limits: tests and demos create many rooms and messages from one address.
_LOOSE = {"per_second": 1000, "burst_count": 1000}
RATE_LIMITS: dict[str, object] = {
    "rc_message": _LOOSE,
    "rc_registration": _LOOSE,
    "rc_registration_token_validity": _LOOSE,
    "rc_login": {"address": _LOOSE, "account": _LOOSE, "failed_attempts": _LOOSE},
    "rc_admin_redaction": _LOOSE,
    "rc_joins": {"local": _LOOSE, "remote": _LOOSE},
    "rc_joins_per_room": _LOOSE,
    "rc_invites": {"per_room": _LOOSE, "per_user": _LOOSE, "per_issuer": _LOOSE},
    "rc_3pid_validation": _LOOSE,
    "rc_key_requests": _LOOSE,
    "rc_room_creation": _LOOSE,
    "rc_presence": {"per_user": _LOOSE},
    "rc_delayed_event_mgmt": _LOOSE,
    "rc_reports": _LOOSE,
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _signing_key() -> str:
    seed = secrets.token_bytes(32)
    return "ed25519 a_dev " + base64.b64encode(seed).decode().rstrip("=") + "\n"


@dataclass
class Homeserver:
    """One Synapse process. `data_dir` keeps the database, keys and config between runs."""

    data_dir: Path
    server_name: str = "localhost"
    port: int = 0
    extra_config: dict[str, object] = field(default_factory=dict)
    rate_limits: dict[str, object] | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "homeserver.yaml"

    def _shared_secret(self) -> str:
        path = self.data_dir / "registration_shared_secret"
        if not path.exists():
            path.write_text(secrets.token_hex(24))
            path.chmod(0o600)
        return path.read_text().strip()

    def write_config(self) -> None:
        d = self.data_dir
        d.mkdir(parents=True, exist_ok=True)
        saved_port = d / "port"
        if not self.port:
            self.port = int(saved_port.read_text()) if saved_port.exists() else free_port()
        saved_port.write_text(str(self.port))
        key = d / "signing.key"
        if not key.exists():
            key.write_text(_signing_key())
        log_config = d / "log.yaml"
        log_config.write_text(
            yaml.safe_dump(
                {
                    "version": 1,
                    "formatters": {"p": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
                    "handlers": {
                        "file": {
                            "class": "logging.FileHandler",
                            "filename": str(d / "homeserver.log"),
                            "formatter": "p",
                        }
                    },
                    "root": {"level": "WARNING", "handlers": ["file"]},
                    "disable_existing_loggers": False,
                }
            )
        )
        secrets_file = d / "secrets.json"
        if not secrets_file.exists():
            secrets_file.write_text(
                json.dumps({"macaroon": secrets.token_hex(24), "form": secrets.token_hex(24)})
            )
        sec = json.loads(secrets_file.read_text())
        config: dict[str, object] = {
            "server_name": self.server_name,
            "pid_file": str(d / "homeserver.pid"),
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {"name": "sqlite3", "args": {"database": str(d / "homeserver.db")}},
            "log_config": str(log_config),
            "media_store_path": str(d / "media"),
            "signing_key_path": str(key),
            "registration_shared_secret": self._shared_secret(),
            "macaroon_secret_key": sec["macaroon"],
            "form_secret": sec["form"],
            "report_stats": False,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "enable_registration": False,
            "use_presence": False,
            "url_preview_enabled": False,
            "enable_metrics": False,
        }
        config.update(self.rate_limits if self.rate_limits is not None else RATE_LIMITS)
        config.update(self.extra_config)
        self.config_path.write_text(yaml.safe_dump(config))

    def start(self, timeout: float = 60.0) -> None:
        self.write_config()
        log = open(self.data_dir / "stdout.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.data_dir / "stdout.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"Synapse exited with {self.proc.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"Synapse did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    def register(self, localpart: str, password: str, admin: bool = False, displayname: str | None = None) -> str:
        """Create an account with the shared-secret admin API; an existing one is kept.

        With `displayname`, the account shows that name (set again on an existing account).
        """
        endpoint = self.url + "/_synapse/admin/v1/register"
        with urllib.request.urlopen(endpoint, timeout=10) as r:
            nonce = json.load(r)["nonce"]
        message = "\x00".join([nonce, localpart, password, "admin" if admin else "notadmin"])
        mac = hmac.new(self._shared_secret().encode(), message.encode(), hashlib.sha1)
        body = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            "mac": mac.hexdigest(),
            **({"displayname": displayname} if displayname else {}),
        }
        req = urllib.request.Request(
            endpoint,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return str(json.load(r)["user_id"])
        except urllib.error.HTTPError as e:
            payload = json.loads(e.read() or b"{}")
            if payload.get("errcode") == "M_USER_IN_USE":
                if displayname:
                    self.set_displayname(localpart, password, displayname)
                return self.user_id(localpart)
            raise RuntimeError(f"registration of {localpart} failed: {payload}") from e

    def _call(self, method: str, path: str, body: dict[str, object] | None = None, token: str | None = None) -> dict[str, object]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(req, timeout=30) as r:
            return dict(json.load(r))

    def set_displayname(self, localpart: str, password: str, displayname: str) -> None:
        """Log in once, set the account's display name, log out (no device is left behind)."""
        login = self._call(
            "POST",
            "/_matrix/client/v3/login",
            {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": localpart}, "password": password},
        )
        token = str(login["access_token"])
        user = urllib.parse.quote(self.user_id(localpart))
        try:
            self._call("PUT", f"/_matrix/client/v3/profile/{user}/displayname", {"displayname": displayname}, token)
        finally:
            self._call("POST", "/_matrix/client/v3/logout", {}, token)

    def __enter__(self) -> "Homeserver":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
