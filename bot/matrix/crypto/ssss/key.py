"""The secret storage key: its recovery-key text form, the key check, and one secret's
encryption under it (``m.secret_storage.v1.aes-hmac-sha2``)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from bot.matrix.crypto.encoding import Base58Error, b58decode, b58encode, b64decode
from bot.matrix.crypto.encoding import b64encode_padded
from bot.matrix.crypto.errors import RecoveryKeyError, SecretStorageError
from bot.matrix.crypto.ssss.types import KEY_LEN, RECOVERY_KEY_PREFIX, SECRET_STORAGE_ALGORITHM
from bot.matrix.crypto.ssss.util import aes_ctr, derive_keys, new_iv

__all__ = [
    "check_secret_storage_key",
    "decode_recovery_key",
    "decrypt_secret",
    "encode_recovery_key",
    "encrypt_secret",
    "make_key_check",
]


def encode_recovery_key(key: bytes) -> str:
    """The spec's key representation: base58(0x8B 0x01 || key || parity), groups of 4."""
    if len(key) != KEY_LEN:
        raise ValueError("a secret storage key is 32 bytes")
    raw = RECOVERY_KEY_PREFIX + key
    parity = 0
    for b in raw:
        parity ^= b
    encoded = b58encode(raw + bytes([parity]))
    return " ".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def decode_recovery_key(text: str) -> bytes:
    """Reverse of :func:`encode_recovery_key`; whitespace anywhere is ignored.

    Raises :class:`RecoveryKeyError` with a message fit for an admin on any malformation.
    """
    compact = "".join(text.split())
    if not compact:
        raise RecoveryKeyError("the recovery key is empty")
    try:
        raw = b58decode(compact)
    except Base58Error as e:
        raise RecoveryKeyError(
            f"the recovery key contains {e.char!r}, which is not a recovery-key character "
            "(0, O, I and l never occur; check for a typo)"
        ) from None
    expected = len(RECOVERY_KEY_PREFIX) + KEY_LEN + 1
    if len(raw) != expected:
        raise RecoveryKeyError(
            f"the recovery key decodes to {len(raw)} bytes instead of {expected}: "
            "it is truncated, has extra characters, or is not a Matrix recovery key"
        )
    if raw[:2] != RECOVERY_KEY_PREFIX:
        raise RecoveryKeyError(
            "the recovery key does not start with the Matrix recovery-key prefix "
            "(they start with 'Es'); is this a passphrase or another kind of key?"
        )
    parity = 0
    for b in raw:
        parity ^= b
    if parity != 0:
        raise RecoveryKeyError(
            "the recovery key's check character does not match: there is a typo in it"
        )
    return raw[2 : 2 + KEY_LEN]


def encrypt_secret(
    key: bytes, name: str, plaintext: bytes | str, iv: bytes | None = None
) -> dict[str, str]:
    """Encrypt one secret under a secret storage key: ``{"iv", "ciphertext", "mac"}``.

    Fields are padded base64, as Element writes them (every client decodes both forms).
    """
    if len(key) != KEY_LEN:
        raise ValueError("a secret storage key is 32 bytes")
    if isinstance(plaintext, str):
        plaintext = plaintext.encode("utf-8")
    iv = new_iv() if iv is None else iv
    if len(iv) != 16:
        raise ValueError("the IV is 16 bytes")
    aes_key, mac_key = derive_keys(key, name)
    ciphertext = aes_ctr(aes_key, iv, plaintext)
    mac = hmac.new(mac_key, ciphertext, hashlib.sha256).digest()
    return {
        "iv": b64encode_padded(iv),
        "ciphertext": b64encode_padded(ciphertext),
        "mac": b64encode_padded(mac),
    }


def decrypt_secret(key: bytes, name: str, data: Mapping[str, Any]) -> bytes:
    """Check the MAC, then decrypt. Raises :class:`SecretStorageError` on any failure."""
    try:
        iv = b64decode(data["iv"])
        ciphertext = b64decode(data["ciphertext"])
        mac = b64decode(data["mac"])
    except (KeyError, TypeError, ValueError) as e:
        raise SecretStorageError(f"secret {name!r} is malformed in secret storage") from e
    if len(iv) != 16:
        raise SecretStorageError(f"secret {name!r} has an IV of {len(iv)} bytes, not 16")
    aes_key, mac_key = derive_keys(key, name)
    expected = hmac.new(mac_key, ciphertext, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, mac):
        raise SecretStorageError(
            f"secret {name!r} failed its integrity check (wrong key, or tampered data)"
        )
    return aes_ctr(aes_key, iv, ciphertext)


def make_key_check(key: bytes, iv: bytes | None = None) -> dict[str, str]:
    """``{"iv", "mac"}`` for a key description: 32 zero bytes encrypted under the name ""."""
    enc = encrypt_secret(key, "", b"\0" * 32, iv)
    return {"iv": enc["iv"], "mac": enc["mac"]}


def check_secret_storage_key(key: bytes, key_info: Mapping[str, Any]) -> bool:
    """True iff ``key`` matches an ``m.secret_storage.key.*`` description's iv/mac check.

    A description without iv/mac cannot be checked; per the spec that counts as a match
    (the caller still verifies what it decrypts).
    """
    if key_info.get("algorithm") != SECRET_STORAGE_ALGORITHM:
        raise SecretStorageError(
            f"unsupported secret storage algorithm {key_info.get('algorithm')!r}"
        )
    if "iv" not in key_info or "mac" not in key_info:
        return True
    try:
        iv = b64decode(key_info["iv"])
        mac = b64decode(key_info["mac"])
    except (TypeError, ValueError) as e:
        raise SecretStorageError("the secret storage key description is malformed") from e
    if len(iv) != 16:
        raise SecretStorageError("the secret storage key description has a bad IV")
    got = b64decode(make_key_check(key, iv)["mac"])
    return hmac.compare_digest(got, mac)
