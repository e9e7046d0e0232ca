"""The three cross-signing keys (master, self-signing, user-signing) and their local copy
``storage_dir/cross-signing.json`` (mode 0600), so a restart reuses them."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.matrix.crypto.encoding import b64decode, b64encode
from bot.matrix.crypto.errors import CrossSigningError
from bot.matrix.crypto.files import write_private
from bot.matrix.crypto.signature import sign_json

__all__ = [
    "CROSS_SIGNING_FILE",
    "ROLES",
    "CrossSigningKeys",
    "load_local",
    "local_key_id",
    "save_local",
]

CROSS_SIGNING_FILE = "cross-signing.json"
ROLES = ("master", "self_signing", "user_signing")
_LOCAL_FORMAT_VERSION = 1


def _public_b64(key: Ed25519PrivateKey) -> str:
    return b64encode(key.public_key().public_bytes_raw())


@dataclass(repr=False)
class CrossSigningKeys:
    """Private seeds (32 bytes each) of the master, self-signing and user-signing keys."""

    user_id: str
    master_seed: bytes
    self_signing_seed: bytes
    user_signing_seed: bytes
    _keys: dict[str, Ed25519PrivateKey] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        for role in ROLES:
            seed = self.seed(role)
            if len(seed) != 32:
                raise CrossSigningError(f"the {role} private key is not 32 bytes")
            self._keys[role] = Ed25519PrivateKey.from_private_bytes(seed)

    def __repr__(self) -> str:  # never print seeds
        return f"CrossSigningKeys(user_id={self.user_id!r}, master={self.master_public!r})"

    @classmethod
    def generate(cls, user_id: str) -> CrossSigningKeys:
        return cls(user_id, *(secrets.token_bytes(32) for _ in ROLES))

    def seed(self, role: str) -> bytes:
        return {
            "master": self.master_seed,
            "self_signing": self.self_signing_seed,
            "user_signing": self.user_signing_seed,
        }[role]

    def private(self, role: str) -> Ed25519PrivateKey:
        return self._keys[role]

    def public(self, role: str) -> str:
        return _public_b64(self._keys[role])

    @property
    def master_public(self) -> str:
        return self.public("master")

    @property
    def self_signing_public(self) -> str:
        return self.public("self_signing")

    @property
    def user_signing_public(self) -> str:
        return self.public("user_signing")

    def key_object(self, role: str) -> dict[str, Any]:
        """The public key object for /keys/device_signing/upload (sub-keys signed by master)."""
        pub = self.public(role)
        obj: dict[str, Any] = {
            "user_id": self.user_id,
            "usage": [role],
            "keys": {f"ed25519:{pub}": pub},
        }
        if role != "master":
            obj = sign_json(
                obj, self._keys["master"], self.user_id, f"ed25519:{self.master_public}"
            )
        return obj

    def to_json(self, secret_storage_key_id: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": _LOCAL_FORMAT_VERSION,
            "user_id": self.user_id,
            "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        for role in ROLES:
            out[role] = {"public": self.public(role), "private": b64encode(self.seed(role))}
        if secret_storage_key_id:
            out["secret_storage_key_id"] = secret_storage_key_id
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CrossSigningKeys:
        if data.get("version") != _LOCAL_FORMAT_VERSION:
            raise CrossSigningError(f"unknown {CROSS_SIGNING_FILE} version {data.get('version')!r}")
        try:
            keys = cls(data["user_id"], *(b64decode(data[r]["private"]) for r in ROLES))
        except (KeyError, TypeError, ValueError) as e:
            raise CrossSigningError(f"{CROSS_SIGNING_FILE} is malformed") from e
        for role in ROLES:
            if data[role].get("public") not in (None, keys.public(role)):
                raise CrossSigningError(
                    f"{CROSS_SIGNING_FILE}: the {role} public key does not match its private key"
                )
        return keys


def load_local(storage_dir: Path) -> CrossSigningKeys | None:
    """The keys in ``storage_dir/cross-signing.json``, or None if the file does not exist."""
    path = storage_dir / CROSS_SIGNING_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CrossSigningError(f"cannot read {path}") from e
    return CrossSigningKeys.from_json(data)


def save_local(storage_dir: Path, keys: CrossSigningKeys, key_id: str | None) -> None:
    """Write ``cross-signing.json`` (0600), noting the secret storage key id protecting it."""
    write_private(
        storage_dir / CROSS_SIGNING_FILE, json.dumps(keys.to_json(key_id), indent=2) + "\n"
    )


def local_key_id(storage_dir: Path) -> str | None:
    """The secret storage key id recorded in ``cross-signing.json``, if readable."""
    try:
        data = json.loads((storage_dir / CROSS_SIGNING_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    key_id = data.get("secret_storage_key_id")
    return key_id if isinstance(key_id, str) and key_id else None
