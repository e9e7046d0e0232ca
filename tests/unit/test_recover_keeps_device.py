"""`carebot recover` never destroys a working device: the session is set aside only when the
device's crypto store is really gone, and other devices are removed only when asked.

The start-up checks are the real `connect`, against a stand-in homeserver (aiohttp) whose
`whoami` fails as a proxy or a restarting server would; the identity restore itself
(`recover_with_client`, tested against Synapse in tests/integration) is replaced by a recorder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from nio import DevicesResponse

from bot.matrix import client as matrix_client
from bot.matrix.client import CryptoStoreMissing, Session, StartupError, connect, make_client, save_session
from bot.matrix.crypto import recover_cli
from bot.matrix.crypto.cross_signing import CrossSigningStatus

USER = "@carebot:hs.test"


@pytest.fixture
async def flaky_homeserver():
    """A homeserver whose whoami answers 502 Bad Gateway, and that counts device deletions."""
    calls: dict[str, int] = {"whoami": 0, "delete_devices": 0, "login": 0}

    async def whoami(request: web.Request) -> web.Response:
        calls["whoami"] += 1
        return web.json_response({"errcode": "M_UNKNOWN", "error": "bad gateway"}, status=502)

    async def count(request: web.Request) -> web.Response:
        name = "delete_devices" if "delete_devices" in request.path else "login"
        calls[name] += 1
        return web.json_response({"errcode": "M_FORBIDDEN", "error": "no"}, status=403)

    app = web.Application()
    app.router.add_get("/_matrix/client/v3/account/whoami", whoami)
    app.router.add_post("/_matrix/client/v3/delete_devices", count)
    app.router.add_post("/_matrix/client/v3/login", count)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001
    try:
        yield f"http://127.0.0.1:{port}", calls
    finally:
        await runner.cleanup()


async def _working_device(url: str, storage: Path) -> Path:
    """A saved session and a real (nio) crypto store for device WORKING; the store's path."""
    storage.mkdir(parents=True, exist_ok=True)
    save_session(storage / "session.json", Session(url, USER, "WORKING", "token"))
    client = make_client(url, USER, storage, "WORKING")
    client.restore_login(USER, "WORKING", "token")
    await client.close()
    store = storage / "crypto" / f"{USER}_WORKING.db"
    assert store.is_file()
    return store


def _status() -> CrossSigningStatus:
    return CrossSigningStatus(USER, "NEWDEVICE", "MASTER", "SSK", "USK", True)


async def test_a_transient_whoami_failure_keeps_the_session_and_every_device(tmp_path, flaky_homeserver, monkeypatch):
    url, calls = flaky_homeserver
    storage = tmp_path / "data"
    store = await _working_device(url, storage)
    before = store.read_bytes()
    restored: list[Any] = []
    monkeypatch.setattr(recover_cli, "recover_with_client", lambda *a: restored.append(a))

    with pytest.raises(StartupError) as raised:
        await recover_cli.recover(
            lambda: connect(url, USER, lambda: "pw", "carebot", storage), "key", storage, "pw", log_out_others=True
        )
    assert not isinstance(raised.value, CryptoStoreMissing)
    assert calls["whoami"] >= 1 and calls["login"] == 0 and calls["delete_devices"] == 0, calls
    assert json.loads((storage / "session.json").read_text())["device_id"] == "WORKING"
    assert store.read_bytes() == before
    assert restored == []


async def test_main_recover_says_nothing_was_changed_on_a_transient_failure(tmp_path, flaky_homeserver, capsys):
    from crypto_vectors import RFC7748_RECOVERY
    from types import SimpleNamespace

    url, calls = flaky_homeserver
    storage = tmp_path / "data"
    await _working_device(url, storage)
    (tmp_path / "pw").write_text("pw")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"homeserver: {{url: '{url}'}}\nbot: {{user_id: '{USER}', password_file: pw}}\n"
        f"storage: {{path: data}}\nroster: {{path: roster.yaml}}\npolicies: {{path: policies}}\nlocale: fr\n"
    )
    key = tmp_path / "recovery-key.txt"
    key.write_text(RFC7748_RECOVERY + "\n")
    args = SimpleNamespace(config=config, recovery_key_file=key, log_out_other_devices=True)
    assert await _in_thread(recover_cli.main_recover, args) == 3
    err = capsys.readouterr().err
    assert "Nothing was changed" in err and "Try again later" in err and "remove" not in err, err
    assert (storage / "session.json").exists() and calls["delete_devices"] == 0


async def _in_thread(fn: Any, *args: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(fn, *args)


class FakeClient:
    def __init__(self, device_id: str, others: list[str]) -> None:
        self.device_id = device_id
        self.user_id = USER
        self.others = others
        self.deleted: list[list[str]] = []
        self.closed = False

    async def devices(self) -> DevicesResponse:
        from nio.responses import Device

        ids = [self.device_id, *self.others]
        return DevicesResponse([Device(d, "", "", 0) for d in ids])

    async def delete_devices(self, devices: list[str], auth: Any = None) -> Any:
        self.deleted.append(list(devices))
        return object()

    async def close(self) -> None:
        self.closed = True


def _lost_store_connect(storage: Path, new_client: FakeClient) -> Any:
    """The real start-up check on a session whose crypto store is gone, then a fresh login."""
    attempts: list[str] = []

    async def connect_now() -> Any:
        attempts.append("connect")
        if (storage / "session.json").exists():
            # the saved device's store is missing: the real check says so
            return await connect("http://127.0.0.1:9", USER, lambda: "pw", "carebot", storage)
        return new_client

    return connect_now, attempts


async def test_a_lost_crypto_store_recovers_on_a_new_device_and_keeps_other_devices_without_the_flag(
    tmp_path, monkeypatch, capsys
):
    storage = tmp_path / "data"
    storage.mkdir()
    save_session(storage / "session.json", Session("http://127.0.0.1:9", USER, "LOST", "token"))
    new = FakeClient("NEWDEVICE", others=["LOST"])
    connect_now, attempts = _lost_store_connect(storage, new)
    restored: list[Any] = []

    async def fake_restore(client: Any, key: str, where: Path) -> CrossSigningStatus:
        restored.append(client)
        return _status()

    monkeypatch.setattr(recover_cli, "recover_with_client", fake_restore)
    status = await recover_cli.recover(connect_now, "key", storage, "pw", log_out_others=False)
    assert status.device_id == "NEWDEVICE" and restored == [new] and attempts == ["connect", "connect"]
    assert not (storage / "session.json").exists()
    lost = list(storage.glob("session.json.lost-*"))
    assert len(lost) == 1 and json.loads(lost[0].read_text())["device_id"] == "LOST"
    assert new.deleted == [] and new.closed
    out = capsys.readouterr().out
    assert "LOST" in out and "--log-out-other-devices" in out, out


async def test_other_devices_are_removed_only_with_the_flag(tmp_path, monkeypatch):
    storage = tmp_path / "data"
    storage.mkdir()
    save_session(storage / "session.json", Session("http://127.0.0.1:9", USER, "LOST", "token"))
    new = FakeClient("NEWDEVICE", others=["LOST"])
    connect_now, _ = _lost_store_connect(storage, new)

    async def fake_restore(client: Any, key: str, where: Path) -> CrossSigningStatus:
        return _status()

    monkeypatch.setattr(recover_cli, "recover_with_client", fake_restore)
    await recover_cli.recover(connect_now, "key", storage, "pw", log_out_others=True)
    assert new.deleted == [["LOST"]]


def test_the_missing_store_error_is_the_only_one_recover_may_act_on():
    assert issubclass(matrix_client.CryptoStoreMissing, matrix_client.StartupError)
