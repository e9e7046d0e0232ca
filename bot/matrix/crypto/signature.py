"""Signed JSON (Matrix spec appendix): canonical JSON, Ed25519 signing and verifying."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from bot.matrix.crypto.encoding import b64decode, b64encode

__all__ = [
    "canonical_json",
    "sign_json",
    "signable",
    "signature_for",
    "verify_json_signature",
]


def canonical_json(value: Any) -> str:
    """Matrix canonical JSON: sorted keys, no insignificant whitespace, UTF-8 (not \\u escapes)."""
    return json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
    )


def signable(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` without ``signatures`` and ``unsigned``: the part a signature covers."""
    return {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}


def signature_for(obj: Mapping[str, Any], key: Ed25519PrivateKey) -> str:
    """The unpadded-base64 Ed25519 signature of ``obj`` (without signatures/unsigned)."""
    return b64encode(key.sign(canonical_json(signable(obj)).encode("utf-8")))


def sign_json(
    obj: Mapping[str, Any], key: Ed25519PrivateKey, signer: str, key_id: str
) -> dict[str, Any]:
    """A copy of ``obj`` with ``signatures[signer][key_id]`` added (other signatures kept).

    ``key_id`` is the full id, e.g. ``"ed25519:DEVICEID"`` or ``"ed25519:<public key>"``.
    """
    out = copy.deepcopy(dict(obj))
    sig = signature_for(out, key)
    out.setdefault("signatures", {}).setdefault(signer, {})[key_id] = sig
    return out


def verify_json_signature(
    obj: Mapping[str, Any], public_key: str, signer: str, key_id: str
) -> bool:
    """True iff ``obj`` carries a valid signature by ``public_key`` under signer/key_id."""
    try:
        sig_b64 = obj["signatures"][signer][key_id]
        sig = b64decode(sig_b64)
        pub = Ed25519PublicKey.from_public_bytes(b64decode(public_key))
        pub.verify(sig, canonical_json(signable(obj)).encode("utf-8"))
        return True
    except (KeyError, TypeError, ValueError, InvalidSignature):
        return False
