"""``carebot recover``: restore the bot's cross-signing identity with the recovery key.

It never destroys a working device: the saved session is set aside (and a new device logged
in) only when that device's crypto store is really gone; any other start-up problem (a
transient ``whoami`` failure, a refused token) stops with the reason and keeps everything.
Other devices of the bot's account are removed only with ``--log-out-other-devices``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.matrix.crypto.cross_signing import CrossSigningStatus, recover_with_client
from bot.matrix.crypto.errors import CrossSigningError, RecoveryKeyError
from bot.matrix.crypto.files import read_recovery_key_file
from bot.matrix.crypto.ssss.key import decode_recovery_key

__all__ = ["log_out_other_devices", "main_recover", "other_devices", "recover"]

Connect = Callable[[], Awaitable[Any]]  # log in or restore the saved device: a nio client


async def other_devices(client: Any) -> list[str]:
    """Ids of the account's devices other than this one."""
    from nio import DevicesResponse

    listed = await client.devices()
    if not isinstance(listed, DevicesResponse):
        return []
    return [d.id for d in listed.devices if d.id != client.device_id]


async def log_out_other_devices(client: Any, password: str) -> list[str]:
    """Remove the bot's other devices from the account (asked for explicitly).

    After a lost store, the lost device's keys are gone, yet it is still signed by the bot's
    self-signing key, so clients would keep sending it room keys. Deleting it needs the
    password (user-interactive auth).
    """
    from nio import DeleteDevicesAuthResponse

    others = await other_devices(client)
    if not others:
        return []
    first = await client.delete_devices(others)
    if isinstance(first, DeleteDevicesAuthResponse):
        await client.delete_devices(
            others,
            {
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": client.user_id},
                "password": password,
                "session": first.session,
            },
        )
    print(f"Removed {len(others)} old device(s) of the bot from the account.")
    return others


async def recover(
    connect: Connect, key: str, storage: Path, password: str, log_out_others: bool
) -> CrossSigningStatus:
    """Restore the identity on the saved device, or on a new one if its crypto store is gone."""
    from bot.matrix.client import CryptoStoreMissing

    session = storage / "session.json"
    try:
        client = await connect()
    except CryptoStoreMissing:
        # That device can never decrypt again: keep its session file aside, log in anew.
        lost = session.with_name(f"session.json.lost-{time.strftime('%Y%m%dT%H%M%S')}")
        session.rename(lost)
        print(f"The crypto store of the saved device is gone; its session was moved to {lost}.")
        client = await connect()
    try:
        status = await recover_with_client(client, key, storage)
        if log_out_others:
            await log_out_other_devices(client, password)
        elif others := await other_devices(client):
            print(
                f"The account has {len(others)} other device(s) ({', '.join(others)}). If they are "
                "the bot's lost devices, remove them with --log-out-other-devices (or from an "
                "admin client), so that nobody keeps sending them room keys."
            )
        return status
    finally:
        await client.close()


def main_recover(args: Any) -> int:
    """CLI glue for ``carebot recover --config … --recovery-key-file … [--log-out-other-devices]``.

    Checks the recovery key file locally (so a typo is reported before anything else), then
    needs config loading and login.
    """
    try:
        key = read_recovery_key_file(args.recovery_key_file)
        decode_recovery_key(key)
    except (OSError, RecoveryKeyError) as e:
        print(f"carebot recover: {e}", file=sys.stderr)
        return 2
    import asyncio

    from bot.config import load_config, resolve_password
    from bot.matrix.client import StartupError, connect
    from bot.yamlutil import ConfigErrors

    try:
        config = load_config(args.config)
        password = resolve_password(config)
    except ConfigErrors as e:
        for err in e.errors:
            print(err, file=sys.stderr)
        return 2
    storage = Path(config.storage.path)

    def connect_now() -> Awaitable[Any]:
        return connect(config.homeserver.url, config.bot.user_id, lambda: password, config.bot.device_name, storage)

    try:
        status = asyncio.run(
            recover(connect_now, key, storage, password, bool(getattr(args, "log_out_other_devices", False)))
        )
    except StartupError as e:
        print(f"carebot recover: {e}\nNothing was changed: the bot's device and its session were kept.", file=sys.stderr)
        return 3
    except CrossSigningError as e:
        print(f"carebot recover: {e}", file=sys.stderr)
        return 1
    print(
        f"Identity restored: master key {status.master_key}, device {status.device_id} "
        f"{'signed' if status.device_signed else 'NOT signed'}."
    )
    return 0
