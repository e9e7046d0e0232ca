"""``carebot recover``: restore the bot's cross-signing identity with the recovery key,
then remove the bot's lost device(s) from the account."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from bot.matrix.crypto.cross_signing import CrossSigningStatus, recover_with_client
from bot.matrix.crypto.errors import CrossSigningError, RecoveryKeyError
from bot.matrix.crypto.files import read_recovery_key_file
from bot.matrix.crypto.ssss.key import decode_recovery_key

__all__ = ["log_out_other_devices", "main_recover"]


async def log_out_other_devices(client: Any, password: str) -> list[str]:
    """The bot has one device: after a recovery, the lost one is removed from the account.

    Its keys are gone, yet it is still signed by the bot's self-signing key, so clients would
    keep sending it room keys. Deleting it needs the password (user-interactive auth).
    """
    from nio import DeleteDevicesAuthResponse, DevicesResponse

    listed = await client.devices()
    if not isinstance(listed, DevicesResponse):
        return []
    others = [d.id for d in listed.devices if d.id != client.device_id]
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


def main_recover(args: Any) -> int:
    """CLI glue for ``carebot recover --config … --recovery-key-file …``.

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

    async def go() -> CrossSigningStatus:
        session = storage / "session.json"
        try:
            client = await connect(
                config.homeserver.url, config.bot.user_id, lambda: password,
                config.bot.device_name, storage,
            )
        except StartupError:
            # The local device is unusable (its crypto store is gone): start a new one.
            session.unlink(missing_ok=True)
            client = await connect(
                config.homeserver.url, config.bot.user_id, lambda: password,
                config.bot.device_name, storage,
            )
        try:
            status = await recover_with_client(client, key, storage)
            await log_out_other_devices(client, password)
            return status
        finally:
            await client.close()

    try:
        status = asyncio.run(go())
    except CrossSigningError as e:
        print(f"carebot recover: {e}", file=sys.stderr)
        return 1
    print(
        f"Identity restored: master key {status.master_key}, device {status.device_id} "
        f"{'signed' if status.device_signed else 'NOT signed'}."
    )
    return 0
