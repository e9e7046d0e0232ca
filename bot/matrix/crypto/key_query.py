"""Reading cross-signing identities from a /keys/query response (pure, no I/O): which
master and self-signing keys a user has, and which devices they validly sign."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bot.matrix.crypto.signature import verify_json_signature

__all__ = ["devices_cross_signed_in", "server_identity", "single_ed25519"]


def single_ed25519(obj: Mapping[str, Any] | None, user_id: str, usage: str) -> str | None:
    """The public key of a cross-signing key object if it is well formed for user/usage."""
    if not isinstance(obj, Mapping) or obj.get("user_id") != user_id:
        return None
    if usage not in (obj.get("usage") or []):
        return None
    keys = obj.get("keys") or {}
    if not isinstance(keys, Mapping) or len(keys) != 1:
        return None
    ((key_id, pub),) = keys.items()
    if not isinstance(pub, str) or key_id != f"ed25519:{pub}":
        return None
    return pub


def server_identity(query: Mapping[str, Any], user_id: str) -> dict[str, str | None]:
    """The published master / self-signing / user-signing public keys of ``user_id``
    (None for a missing or malformed one); signatures are not checked here."""
    return {
        "master": single_ed25519((query.get("master_keys") or {}).get(user_id), user_id, "master"),
        "self_signing": single_ed25519(
            (query.get("self_signing_keys") or {}).get(user_id), user_id, "self_signing"
        ),
        "user_signing": single_ed25519(
            (query.get("user_signing_keys") or {}).get(user_id), user_id, "user_signing"
        ),
    }


def _verified_self_signing_key(query: Mapping[str, Any], user_id: str) -> tuple[str, str] | None:
    """(master, self-signing) public keys if the SSK is validly signed by the master key."""
    master_obj = (query.get("master_keys") or {}).get(user_id)
    ssk_obj = (query.get("self_signing_keys") or {}).get(user_id)
    master = single_ed25519(master_obj, user_id, "master")
    ssk = single_ed25519(ssk_obj, user_id, "self_signing")
    if master is None or ssk is None:
        return None
    if not verify_json_signature(ssk_obj, master, user_id, f"ed25519:{master}"):
        return None
    return master, ssk


def _device_cross_signed(device: Mapping[str, Any], user_id: str, device_id: str, ssk: str) -> bool:
    if not isinstance(device, Mapping):
        return False
    if device.get("user_id") != user_id or device.get("device_id") != device_id:
        return False
    dev_key = (device.get("keys") or {}).get(f"ed25519:{device_id}")
    if not isinstance(dev_key, str):
        return False
    # The device's own signature (as every client checks), then the owner's self-signing key.
    return verify_json_signature(
        device, dev_key, user_id, f"ed25519:{device_id}"
    ) and verify_json_signature(device, ssk, user_id, f"ed25519:{ssk}")


def devices_cross_signed_in(
    query: Mapping[str, Any],
    user_ids: Iterable[str],
    expected_master_keys: Mapping[str, str] | None = None,
) -> dict[str, set[str]]:
    """Pure part of :func:`cross_signed_devices`, on a /keys/query response."""
    out: dict[str, set[str]] = {}
    device_keys = query.get("device_keys") or {}
    for user_id in user_ids:
        out[user_id] = set()
        found = _verified_self_signing_key(query, user_id)
        if found is None:
            continue
        master, ssk = found
        if expected_master_keys and user_id in expected_master_keys:
            if expected_master_keys[user_id] != master:
                continue
        for device_id, device in (device_keys.get(user_id) or {}).items():
            if _device_cross_signed(device, user_id, device_id, ssk):
                out[user_id].add(device_id)
    return out
