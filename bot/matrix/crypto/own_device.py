"""The bot's own device on the homeserver: checking its published keys are this process's,
and signing it with the self-signing key (and the master key with the device)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.matrix.crypto.api import query_keys, upload_signatures
from bot.matrix.crypto.cross_signing_key import CrossSigningKeys
from bot.matrix.crypto.errors import CrossSigningError
from bot.matrix.crypto.signature import sign_json, signable, verify_json_signature

__all__ = ["own_device", "own_query", "require_olm", "sign_own_device"]


def require_olm(client: Any) -> None:
    """Refuse a client that is not logged in with its encryption (olm) loaded."""
    if getattr(client, "olm", None) is None or not client.device_id or not client.user_id:
        raise CrossSigningError(
            "the nio client must be logged in with encryption loaded (client.olm is missing)"
        )


async def own_query(client: Any) -> dict[str, Any]:
    """/keys/query for the bot's own user, uploading this device's keys first if needed."""
    query = await query_keys(client, [client.user_id])
    own = (query.get("device_keys") or {}).get(client.user_id) or {}
    if client.device_id not in own and getattr(client, "should_upload_keys", False):
        await client.keys_upload()
        query = await query_keys(client, [client.user_id])
    return query


def own_device(query: Mapping[str, Any], client: Any) -> dict[str, Any]:
    """This device's key object in ``query``, refused unless it holds this process's keys."""
    device = ((query.get("device_keys") or {}).get(client.user_id) or {}).get(client.device_id)
    if not isinstance(device, dict):
        raise CrossSigningError(
            f"device {client.device_id} has no keys on the homeserver; upload them first "
            "(client.keys_upload())"
        )
    # Only ever sign the keys this process actually holds, whatever the server returns.
    ours = client.olm.account.identity_keys
    keys = device.get("keys") or {}
    if (
        keys.get(f"ed25519:{client.device_id}") != ours["ed25519"]
        or keys.get(f"curve25519:{client.device_id}") != ours["curve25519"]
        or device.get("user_id") != client.user_id
        or device.get("device_id") != client.device_id
    ):
        raise CrossSigningError(
            f"the homeserver's keys for device {client.device_id} are not this device's keys; "
            "refusing to sign them"
        )
    return device


async def sign_own_device(client: Any, keys: CrossSigningKeys, query: Mapping[str, Any]) -> bool:
    """Make sure the current device is signed by our SSK, and our master key by the device.

    Uploads only what is missing; returns whether the device ends up signed (re-checked on
    the server after an upload).
    """
    user_id, device_id = client.user_id, client.device_id
    device = own_device(query, client)
    ssk = keys.self_signing_public
    master = keys.master_public
    payload: dict[str, Any] = {}

    if not verify_json_signature(device, ssk, user_id, f"ed25519:{ssk}"):
        signed = sign_json(
            signable(device), keys.private("self_signing"), user_id, f"ed25519:{ssk}"
        )
        payload[device_id] = signed

    master_obj = (query.get("master_keys") or {}).get(user_id) or {}
    dev_pub = device["keys"][f"ed25519:{device_id}"]
    if master_obj and not verify_json_signature(
        master_obj, dev_pub, user_id, f"ed25519:{device_id}"
    ):
        unsigned = signable(master_obj)
        sig = client.olm.sign_json(unsigned)  # canonical JSON, signed by the device key
        payload[master] = {**unsigned, "signatures": {user_id: {f"ed25519:{device_id}": sig}}}

    if not payload:
        return True
    resp = await upload_signatures(client, {user_id: payload})
    failures = (resp.get("failures") or {}).get(user_id) or {}
    if device_id in failures:
        f = failures[device_id]
        raise CrossSigningError(
            f"the homeserver refused the signature on device {device_id}: "
            f"{f.get('errcode', '?')} {f.get('error', '')}".strip()
        )
    # A refused master-key signature by the device is not fatal (nice-to-have).
    after = await query_keys(client, [user_id])
    return verify_json_signature(own_device(after, client), ssk, user_id, f"ed25519:{ssk}")
