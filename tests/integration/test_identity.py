"""The bot's cross-signing identity against a real Synapse and Element's crypto stack.

* `carebot recover`: after the bot's storage is lost, `carebot run` refuses to start (the
  identity exists on the server, not locally), a wrong recovery key is refused, the right one
  restores the same master key on a new, cross-signed device, and an Element-stack patient in
  "only signed devices" mode keeps talking to the bot.
* `trust: cross-signed`: a device its owner has not cross-signed gets no room key, only an
  `m.room_key.withheld` (m.unverified); a cross-signed Element practitioner reads the banner.
* `trust: tofu`: the practitioner is told that a device of the patient is not verified.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from nio import AsyncClient, LoginResponse, ToDeviceEvent

from bot.matrix import crypto
from tests.integration.helpers import NioUser, element_user, js_reply_to, make_clinic, running_bot, wait_js_event

pytestmark = [pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0



# -- helpers ----------------------------------------------------------------------------------


async def _cli(*args: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    """`python -m bot.cli …` as a child process (the real entry point), without blocking the loop."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot.cli", *args],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ},
    )








async def _until(check: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    """Poll an async `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.5)
    raise AssertionError(f"{what} not true in {timeout}s (last: {last!r})")


async def _plain_client(homeserver_url: str, who: tuple[str, str]) -> AsyncClient:
    """A logged-in client without encryption: an outside observer of /keys/query."""
    client = AsyncClient(homeserver_url, who[0])
    resp = await client.login(who[1], device_name="observer")
    assert isinstance(resp, LoginResponse), resp
    return client


async def _bot_identity(observer: AsyncClient, bot_id: str) -> tuple[str | None, set[str]]:
    """(master key, devices validly signed by the self-signing key) as the server publishes them."""
    query = await crypto._query_keys(observer, [bot_id])  # noqa: SLF001
    master = crypto._server_identity(query, bot_id)["master"]  # noqa: SLF001
    signed = (await crypto.cross_signed_devices(observer, [bot_id]))[bot_id]
    return master, signed


def _set_config(config_path: Path, **values: Any) -> None:
    data = yaml.safe_load(config_path.read_text())
    data.update(values)
    config_path.write_text(yaml.safe_dump(data))


# -- carebot recover --------------------------------------------------------------------------


@pytest.mark.interop
async def test_recover_restores_the_identity_on_a_new_device_after_storage_loss(
    homeserver, new_user, tmp_path
):
    clinic = make_clinic(tmp_path, homeserver, new_user)
    cfg = str(clinic.config_path)
    bot_id = clinic.bot[0]
    data = tmp_path / "data"
    observer = await _plain_client(homeserver.url, clinic.practitioner)
    patient = await element_user("patient", clinic.patient, homeserver.url)
    try:
        # 1. First start: the bot creates its identity and the recovery key file.
        async with running_bot(clinic.config_path) as bot:
            first_device = bot.client.device_id
            room_id = await patient.wait_invite(timeout=TIMEOUT)
            await patient.join(room_id)
            await wait_js_event(
                patient, room_id,
                lambda e: e["sender"] == bot_id and bool(e.get("decrypted"))
                and (e.get("content") or {}).get("carebot.disclaimer") is True,
                "decrypted disclaimer",
                after_reload=True,
            )
        master, signed = await _bot_identity(observer, bot_id)
        assert master and first_device in signed, (master, signed, first_device)
        key_file = data / crypto.RECOVERY_KEY_FILE
        assert key_file.is_file(), sorted(p.name for p in data.iterdir())
        offline = tmp_path / "offline-recovery-key.txt"
        shutil.copy(key_file, offline)

        # 2. The whole storage directory is lost: `run` refuses, and says what to do.
        shutil.rmtree(data)
        run = await _cli("run", "--config", cfg)
        assert run.returncode == 3, (run.returncode, run.stderr[-2000:])
        assert "carebot recover" in run.stderr, run.stderr[-2000:]
        assert master in run.stderr, run.stderr[-2000:]  # names the identity it will not replace
        assert not (data / crypto.CROSS_SIGNING_FILE).exists()
        assert (await _bot_identity(observer, bot_id))[0] == master  # no silent reset

        # 3. A wrong (well-formed) key and a mistyped key are refused with a clear message.
        wrong = tmp_path / "wrong-key.txt"
        wrong.write_text(crypto.encode_recovery_key(os.urandom(32)) + "\n")
        res = await _cli("recover", "--config", cfg, "--recovery-key-file", str(wrong))
        assert res.returncode != 0, res
        assert "not the one protecting" in res.stderr, (res.stdout, res.stderr[-2000:])
        typo = tmp_path / "typo-key.txt"
        text = offline.read_text().strip()
        typo.write_text(text[:-1] + ("2" if text[-1] != "2" else "3"))
        res = await _cli("recover", "--config", cfg, "--recovery-key-file", str(typo))
        assert res.returncode != 0, res
        assert "recovery key" in (res.stdout + res.stderr), (res.stdout, res.stderr)
        assert not (data / crypto.CROSS_SIGNING_FILE).exists()

        # 4. The right key: same master key, a new device signed by the self-signing key.
        res = await _cli("recover", "--config", cfg, "--recovery-key-file", str(offline), "--log-out-other-devices")
        assert res.returncode == 0, (res.stdout, res.stderr[-3000:])
        assert master in res.stdout and "signed" in res.stdout, res.stdout
        new_master, signed = await _bot_identity(observer, bot_id)
        assert new_master == master
        # The lost device is logged out (asked for with the flag): only the new one remains, signed.
        assert len(signed) == 1 and first_device not in signed, (signed, first_device)
        (new_device,) = signed
        assert "old device" in res.stdout

        # 5. The bot starts normally with that device; the only-signed Element patient trusts it
        #    and reads the bot's answers.
        async with running_bot(clinic.config_path) as bot:
            assert bot.client.device_id == new_device
            trust = await _until(
                lambda: _trusted(patient, bot_id, new_device), "patient trusts the new bot device"
            )
            assert trust["signedByOwner"], trust
            asked = await patient.send(room_id, "!aide")
            reply = await wait_js_event(
                patient, room_id,
                lambda e: e["sender"] == bot_id and js_reply_to(e) == asked,
                "bot reply to !aide",
            )
            assert reply["encrypted"] and reply["decrypted"] and "decryptionError" not in reply, reply
            assert reply["content"]["msgtype"] == "m.notice", reply
            assert "112" in reply["content"]["body"], reply["content"]["body"]
    finally:
        await patient.close()
        await observer.close()


async def _trusted(peer: Any, user_id: str, device_id: str) -> dict | None:
    trust = await peer.device_trust(user_id, device_id)
    return trust if trust.get("known") and trust.get("signedByOwner") else None


# -- trust modes ------------------------------------------------------------------------------


@dataclass
class RecordingUser(NioUser):
    """A NioUser that also keeps the raw to-device events it receives."""

    to_device: list[dict] = field(default_factory=list)

    async def start(self) -> "RecordingUser":
        await super().start()
        assert self.client is not None

        async def record(event: Any) -> None:
            self.to_device.append(event.source)

        self.client.add_to_device_callback(record, (ToDeviceEvent,))
        return self

    async def wait_to_device(self, predicate: Callable[[dict], bool], timeout: float = TIMEOUT) -> dict:
        async def find() -> dict:
            while True:
                for ev in self.to_device:
                    if predicate(ev):
                        return ev
                async with self._changed:
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(find(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"no matching to-device event in {timeout}s; got types "
                f"{[e.get('type') for e in self.to_device]}"
            ) from None


def _is_disclaimer(e: dict) -> bool:
    return bool(e.get("decrypted")) and (e.get("content") or {}).get("carebot.disclaimer") is True


@pytest.mark.interop
async def test_cross_signed_mode_withholds_keys_from_an_unsigned_device(homeserver, new_user, tmp_path):
    clinic = make_clinic(tmp_path, homeserver, new_user)
    _set_config(clinic.config_path, trust="cross-signed")
    bot_id = clinic.bot[0]
    patient = RecordingUser(clinic.patient[0], clinic.patient[1], homeserver.url, tmp_path / "clients" / "patient")
    patient.auto_join = False
    await patient.start()
    practitioner = await element_user("practitioner", clinic.practitioner, homeserver.url)
    try:
        async with running_bot(clinic.config_path) as bot:
            pair_room = (await bot.store.room_for_pair("pat-1", "dr-a")).room_id  # not the desk or Space
            room_id = await practitioner.wait_invite(timeout=TIMEOUT, room_id=pair_room)
            await practitioner.join(room_id)
            await asyncio.wait_for(_until_invited(patient, room_id), TIMEOUT)
            assert patient.client is not None
            await patient.client.join(room_id)
            await patient.wait_room(lambda r: r == room_id)  # nio knows the room after a sync

            # The cross-signed practitioner reads the banner.
            banner = await wait_js_event(practitioner, room_id, _is_disclaimer, "decrypted disclaimer", after_reload=True)
            assert banner["sender"] == bot_id

            # The patient's unsigned nio device: an m.unverified withheld, no key.
            withheld = await patient.wait_to_device(
                lambda ev: ev.get("type") == "m.room_key.withheld"
                and (ev.get("content") or {}).get("room_id") == room_id
            )
            content = withheld["content"]
            assert content["code"] == "m.unverified", withheld
            assert withheld["sender"] == bot_id, withheld
            assert content["sender_key"] == bot.client.olm.account.identity_keys["curve25519"]

            seen_before = len(patient.seen)
            asked = await patient.send(room_id, "!aide")
            # The bot answers (the practitioner reads it); for the patient it stays undecryptable.
            reply = await wait_js_event(
                practitioner, room_id,
                lambda e: e["sender"] == bot_id and bool(e.get("decrypted")) and js_reply_to(e) == asked,
                "the bot's reply to the patient's !aide",
            )
            bot_events = await patient.wait_for(
                lambda s: s.sender == bot_id and s.event_id == reply["eventId"], after=seen_before
            )
            await asyncio.sleep(2)  # leave time for any (wrong) key to arrive
            from_bot = [s for s in patient.seen if s.sender == bot_id]
            assert from_bot and bot_events in from_bot
            assert not any(s.decrypted for s in from_bot), [s.content for s in from_bot if s.decrypted]
            assert not any(
                ev.get("type") in ("m.room.encrypted", "m.room_key", "m.forwarded_room_key")
                and ev.get("sender") == bot_id
                and (ev.get("content") or {}).get("room_id") == room_id
                for ev in patient.to_device
            )
    finally:
        await practitioner.close()
        await patient.close()


async def _until_invited(user: NioUser, room_id: str) -> None:
    while room_id not in user.invites:
        async with user._changed:  # noqa: SLF001
            await user._changed.wait()  # noqa: SLF001


async def test_tofu_mode_tells_the_practitioner_about_an_unverified_device(homeserver, new_user, tmp_path):
    clinic = make_clinic(tmp_path, homeserver, new_user, locale="en")
    bot_id = clinic.bot[0]
    patient = clinic.user(clinic.patient, "patient")
    practitioner = clinic.user(clinic.practitioner, "practitioner")
    await patient.start()
    await practitioner.start()
    try:
        async with running_bot(clinic.config_path):
            notice = await practitioner.wait_for(
                lambda s: s.sender == bot_id and s.decrypted
                and "not verified by its owner" in str(s.content.get("body", "")),
                timeout=60,
            )
            body = notice.content["body"]
            assert "Messages are still delivered" in body, body
            html = str(notice.content.get("formatted_body", "")) + body
            mentions = (notice.content.get("m.mentions") or {}).get("user_ids", [])
            assert clinic.practitioner[0] in mentions or clinic.practitioner[0] in html, notice.content
            # The patient (tofu) still reads the bot's messages.
            await patient.wait_for(lambda s: s.sender == bot_id and s.decrypted, timeout=60)
    finally:
        await practitioner.close()
        await patient.close()
