"""Primitives of ``m.secret_storage.v1.aes-hmac-sha2``: HKDF, AES-CTR, IVs and key ids."""

from __future__ import annotations

import secrets
import string

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["aes_ctr", "derive_keys", "new_iv", "new_key_id"]


def derive_keys(key: bytes, name: str) -> tuple[bytes, bytes]:
    """(AES key, HMAC key) for the secret ``name``: HKDF-SHA256, zero salt, info = name."""
    okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=b"\0" * 32, info=name.encode()).derive(
        key
    )
    return okm[:32], okm[32:]


def aes_ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-256-CTR (the same call encrypts and decrypts)."""
    cipher = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return cipher.update(data) + cipher.finalize()


def new_iv() -> bytes:
    """A random 16-byte IV with bit 63 cleared, as the spec asks."""
    iv = bytearray(secrets.token_bytes(16))
    iv[8] &= 0x7F  # clear bit 63 so the 64-bit counter half cannot wrap
    return bytes(iv)


def new_key_id() -> str:
    """A random 32-character id for a new secret storage key."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(32))
