"""Names and constants of secret storage (account-data types, secret names, sizes)."""

from __future__ import annotations

__all__ = [
    "DEFAULT_KEY_TYPE",
    "KEY_LEN",
    "KEY_TYPE_PREFIX",
    "RECOVERY_KEY_PREFIX",
    "SECRET_NAMES",
    "SECRET_STORAGE_ALGORITHM",
]

SECRET_STORAGE_ALGORITHM = "m.secret_storage.v1.aes-hmac-sha2"
# Account-data type naming the default key, and prefix of each key's description.
DEFAULT_KEY_TYPE = "m.secret_storage.default_key"
KEY_TYPE_PREFIX = "m.secret_storage.key."
# Secret name (and account-data type) for each cross-signing key.
SECRET_NAMES = {
    "master": "m.cross_signing.master",
    "self_signing": "m.cross_signing.self_signing",
    "user_signing": "m.cross_signing.user_signing",
}

# A secret storage key is 32 random bytes; its text form starts with these two bytes.
KEY_LEN = 32
RECOVERY_KEY_PREFIX = b"\x8b\x01"
