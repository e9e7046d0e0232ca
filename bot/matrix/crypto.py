"""Cross-signing, secret storage (SSSS) and the recovery key, for the bot's own account.

matrix-nio has no cross-signing and no secret storage, but clients that "exclude insecure
devices" (MSC4153) only talk to devices their owner has cross-signed. This module gives the
bot a cross-signing identity of its own and keeps it across restarts and re-installs:

* three Ed25519 keys (master, self-signing, user-signing), published with
  POST /keys/device_signing/upload (user-interactive auth with the account password when the
  homeserver asks for it);
* the bot's current device signed by the self-signing key (POST /keys/signatures/upload);
* the three private keys in server-side secret storage (``m.secret_storage.v1.aes-hmac-sha2``),
  encrypted under a random 32-byte recovery key that is written once to
  ``storage_dir/recovery-key.txt`` for the admin to take offline;
* a local copy of the private keys in ``storage_dir/cross-signing.json`` (mode 0600) so a
  restart reuses them.

An existing identity on the server is never replaced silently: without the local keys the bot
refuses to start (:class:`IdentityExists`) until the admin runs ``carebot recover``.

Nothing here logs, and no exception message carries key material or the password.
Wire formats follow the Matrix client-server spec (cross-signing, secret storage, key
representation) and the appendix on signing JSON.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import sys
import os
import secrets
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "CROSS_SIGNING_FILE",
    "RECOVERY_KEY_FILE",
    "SECRET_STORAGE_ALGORITHM",
    "CrossSigningError",
    "CrossSigningKeys",
    "CrossSigningStatus",
    "IdentityExists",
    "RecoveryKeyError",
    "SecretStorageError",
    "WrongRecoveryKey",
    "b64decode",
    "b64encode",
    "canonical_json",
    "check_secret_storage_key",
    "cross_signed_devices",
    "decode_recovery_key",
    "decrypt_secret",
    "devices_cross_signed_in",
    "encode_recovery_key",
    "encrypt_secret",
    "ensure_cross_signing",
    "main_recover",
    "make_key_check",
    "read_recovery_key_file",
    "recover_identity",
    "recover_with_client",
    "sign_json",
    "signature_for",
    "upload_cross_signing_keys",
    "verify_json_signature",
]

CROSS_SIGNING_FILE = "cross-signing.json"
RECOVERY_KEY_FILE = "recovery-key.txt"

SECRET_STORAGE_ALGORITHM = "m.secret_storage.v1.aes-hmac-sha2"
DEFAULT_KEY_TYPE = "m.secret_storage.default_key"
KEY_TYPE_PREFIX = "m.secret_storage.key."
# Secret name (and account-data type) for each cross-signing key.
SECRET_NAMES = {
    "master": "m.cross_signing.master",
    "self_signing": "m.cross_signing.self_signing",
    "user_signing": "m.cross_signing.user_signing",
}
_ROLES = ("master", "self_signing", "user_signing")

RECOVERY_KEY_PREFIX = b"\x8b\x01"
_KEY_LEN = 32
_BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {c: i for i, c in enumerate(_BASE58_ALPHABET)}

_CLIENT_V3 = "/_matrix/client/v3"
_LOCAL_FORMAT_VERSION = 1


# --------------------------------------------------------------------------------------------
# Errors and results
# --------------------------------------------------------------------------------------------


class CrossSigningError(Exception):
    """Cross-signing or secret storage could not be set up; the message says why."""


class IdentityExists(CrossSigningError):
    """The account already has a cross-signing identity that this installation cannot use."""


class SecretStorageError(CrossSigningError):
    """Secret storage is missing, malformed, or failed its integrity check (MAC)."""


class RecoveryKeyError(CrossSigningError, ValueError):
    """The recovery key text is malformed (typo, wrong length, not a Matrix recovery key)."""


class WrongRecoveryKey(RecoveryKeyError):
    """The recovery key is well formed but is not the one protecting this account's secrets."""


@dataclass(frozen=True)
class CrossSigningStatus:
    user_id: str
    device_id: str
    master_key: str
    self_signing_key: str
    user_signing_key: str
    device_signed: bool
    created: bool = False  # a new identity was published by this call
    recovered: bool = False  # the keys were just restored from secret storage
    recovery_key_path: Path | None = None  # only when the recovery key was just written


# --------------------------------------------------------------------------------------------
# Encodings
# --------------------------------------------------------------------------------------------


def b64encode(data: bytes) -> str:
    """Unpadded standard base64, the Matrix default."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64decode(text: str) -> bytes:
    """Standard base64, padded or not (clients disagree on padding)."""
    text = text.strip().rstrip("=")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _b64encode_padded(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def canonical_json(value: Any) -> str:
    """Matrix canonical JSON: sorted keys, no insignificant whitespace, UTF-8 (not \\u escapes)."""
    return json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
    )


def _base58_encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out: list[str] = []
    while n:
        n, r = divmod(n, 58)
        out.append(_BASE58_ALPHABET[r])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def _base58_decode(text: str) -> bytes:
    n = 0
    for ch in text:
        try:
            n = n * 58 + _BASE58_INDEX[ch]
        except KeyError:
            raise RecoveryKeyError(
                f"the recovery key contains {ch!r}, which is not a recovery-key character "
                "(0, O, I and l never occur; check for a typo)"
            ) from None
    pad = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * pad + body


def encode_recovery_key(key: bytes) -> str:
    """The spec's key representation: base58(0x8B 0x01 || key || parity), groups of 4."""
    if len(key) != _KEY_LEN:
        raise ValueError("a secret storage key is 32 bytes")
    raw = RECOVERY_KEY_PREFIX + key
    parity = 0
    for b in raw:
        parity ^= b
    encoded = _base58_encode(raw + bytes([parity]))
    return " ".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def decode_recovery_key(text: str) -> bytes:
    """Reverse of :func:`encode_recovery_key`; whitespace anywhere is ignored.

    Raises :class:`RecoveryKeyError` with a message fit for an admin on any malformation.
    """
    compact = "".join(text.split())
    if not compact:
        raise RecoveryKeyError("the recovery key is empty")
    raw = _base58_decode(compact)
    expected = len(RECOVERY_KEY_PREFIX) + _KEY_LEN + 1
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
    return raw[2 : 2 + _KEY_LEN]


# --------------------------------------------------------------------------------------------
# Signed JSON
# --------------------------------------------------------------------------------------------


def _signable(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}


def signature_for(obj: Mapping[str, Any], key: Ed25519PrivateKey) -> str:
    """The unpadded-base64 Ed25519 signature of ``obj`` (without signatures/unsigned)."""
    return b64encode(key.sign(canonical_json(_signable(obj)).encode("utf-8")))


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
        pub.verify(sig, canonical_json(_signable(obj)).encode("utf-8"))
        return True
    except (KeyError, TypeError, ValueError, InvalidSignature):
        return False


# --------------------------------------------------------------------------------------------
# Secret storage: m.secret_storage.v1.aes-hmac-sha2
# --------------------------------------------------------------------------------------------


def _derive_keys(key: bytes, name: str) -> tuple[bytes, bytes]:
    okm = HKDF(algorithm=hashes.SHA256(), length=64, salt=b"\0" * 32, info=name.encode()).derive(
        key
    )
    return okm[:32], okm[32:]


def _aes_ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return cipher.update(data) + cipher.finalize()


def _new_iv() -> bytes:
    iv = bytearray(secrets.token_bytes(16))
    iv[8] &= 0x7F  # clear bit 63 so the 64-bit counter half cannot wrap
    return bytes(iv)


def encrypt_secret(
    key: bytes, name: str, plaintext: bytes | str, iv: bytes | None = None
) -> dict[str, str]:
    """Encrypt one secret under a secret storage key: ``{"iv", "ciphertext", "mac"}``.

    Fields are padded base64, as Element writes them (every client decodes both forms).
    """
    if len(key) != _KEY_LEN:
        raise ValueError("a secret storage key is 32 bytes")
    if isinstance(plaintext, str):
        plaintext = plaintext.encode("utf-8")
    iv = _new_iv() if iv is None else iv
    if len(iv) != 16:
        raise ValueError("the IV is 16 bytes")
    aes_key, mac_key = _derive_keys(key, name)
    ciphertext = _aes_ctr(aes_key, iv, plaintext)
    mac = hmac.new(mac_key, ciphertext, hashlib.sha256).digest()
    return {
        "iv": _b64encode_padded(iv),
        "ciphertext": _b64encode_padded(ciphertext),
        "mac": _b64encode_padded(mac),
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
    aes_key, mac_key = _derive_keys(key, name)
    expected = hmac.new(mac_key, ciphertext, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, mac):
        raise SecretStorageError(
            f"secret {name!r} failed its integrity check (wrong key, or tampered data)"
        )
    return _aes_ctr(aes_key, iv, ciphertext)


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


# --------------------------------------------------------------------------------------------
# The three cross-signing keys
# --------------------------------------------------------------------------------------------


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
        for role in _ROLES:
            seed = self.seed(role)
            if len(seed) != 32:
                raise CrossSigningError(f"the {role} private key is not 32 bytes")
            self._keys[role] = Ed25519PrivateKey.from_private_bytes(seed)

    def __repr__(self) -> str:  # never print seeds
        return f"CrossSigningKeys(user_id={self.user_id!r}, master={self.master_public!r})"

    @classmethod
    def generate(cls, user_id: str) -> CrossSigningKeys:
        return cls(user_id, *(secrets.token_bytes(32) for _ in _ROLES))

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
        for role in _ROLES:
            out[role] = {"public": self.public(role), "private": b64encode(self.seed(role))}
        if secret_storage_key_id:
            out["secret_storage_key_id"] = secret_storage_key_id
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CrossSigningKeys:
        if data.get("version") != _LOCAL_FORMAT_VERSION:
            raise CrossSigningError(f"unknown {CROSS_SIGNING_FILE} version {data.get('version')!r}")
        try:
            keys = cls(data["user_id"], *(b64decode(data[r]["private"]) for r in _ROLES))
        except (KeyError, TypeError, ValueError) as e:
            raise CrossSigningError(f"{CROSS_SIGNING_FILE} is malformed") from e
        for role in _ROLES:
            if data[role].get("public") not in (None, keys.public(role)):
                raise CrossSigningError(
                    f"{CROSS_SIGNING_FILE}: the {role} public key does not match its private key"
                )
        return keys


# --------------------------------------------------------------------------------------------
# Local files
# --------------------------------------------------------------------------------------------


def _write_private(path: Path, text: str) -> None:
    """Atomically write ``text`` to ``path`` with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _load_local(storage_dir: Path) -> CrossSigningKeys | None:
    path = storage_dir / CROSS_SIGNING_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CrossSigningError(f"cannot read {path}") from e
    return CrossSigningKeys.from_json(data)


def _save_local(storage_dir: Path, keys: CrossSigningKeys, key_id: str | None) -> None:
    _write_private(
        storage_dir / CROSS_SIGNING_FILE, json.dumps(keys.to_json(key_id), indent=2) + "\n"
    )


def _write_recovery_key(storage_dir: Path, recovery_key: str, user_id: str) -> Path:
    path = storage_dir / RECOVERY_KEY_FILE
    if path.exists():
        # Never lose a key silently: keep the previous one beside the new one.
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path.rename(path.with_name(f"{RECOVERY_KEY_FILE}.replaced-{stamp}"))
    _write_private(
        path,
        f"# Matrix recovery key for {user_id}: restores the bot's cross-signing identity.\n"
        "# Move it to offline storage; anyone holding it can impersonate the bot's devices.\n"
        f"{recovery_key}\n",
    )
    return path


def read_recovery_key_file(path: Path | str) -> str:
    """The recovery key in a file: the first line that is not empty or a # comment."""
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line
    raise RecoveryKeyError(f"no recovery key found in {path}")


# --------------------------------------------------------------------------------------------
# HTTP (raw, through the nio client's aiohttp session)
# --------------------------------------------------------------------------------------------


async def _request(
    client: Any, method: str, path: str, body: Any | None = None
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {client.access_token}"}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body)
    resp = await client.send(method, _CLIENT_V3 + path, data, headers)
    try:
        try:
            payload = await resp.json(content_type=None)
        except ValueError:
            payload = {}
        return resp.status, payload if isinstance(payload, dict) else {}
    finally:
        resp.release()


def _describe(status: int, payload: Mapping[str, Any]) -> str:
    code = payload.get("errcode", "?")
    err = payload.get("error", "")
    return f"HTTP {status} {code} {err}".strip()


async def _query_keys(client: Any, user_ids: Iterable[str]) -> dict[str, Any]:
    body = {"device_keys": {u: [] for u in user_ids}, "timeout": 10000}
    status, payload = await _request(client, "POST", "/keys/query", body)
    if status != 200:
        raise CrossSigningError(f"/keys/query failed: {_describe(status, payload)}")
    return payload


def _account_data_path(user_id: str, type_: str) -> str:
    return f"/user/{quote(user_id, safe='')}/account_data/{quote(type_, safe='')}"


async def _get_account_data(client: Any, type_: str) -> dict[str, Any] | None:
    status, payload = await _request(client, "GET", _account_data_path(client.user_id, type_))
    if status == 404:
        return None
    if status != 200:
        raise CrossSigningError(f"reading account data {type_}: {_describe(status, payload)}")
    return payload


async def _put_account_data(client: Any, type_: str, content: Mapping[str, Any]) -> None:
    status, payload = await _request(
        client, "PUT", _account_data_path(client.user_id, type_), content
    )
    if status != 200:
        raise CrossSigningError(f"writing account data {type_}: {_describe(status, payload)}")


async def upload_cross_signing_keys(
    client: Any, keys: CrossSigningKeys, password: str | None
) -> bool:
    """POST /keys/device_signing/upload, answering a password UIA challenge if one comes.

    Returns True if the homeserver asked for user-interactive auth.
    """
    body: dict[str, Any] = {
        "master_key": keys.key_object("master"),
        "self_signing_key": keys.key_object("self_signing"),
        "user_signing_key": keys.key_object("user_signing"),
    }
    status, payload = await _request(client, "POST", "/keys/device_signing/upload", body)
    if status == 200:
        return False
    if status != 401 or "flows" not in payload:
        raise CrossSigningError(
            f"uploading cross-signing keys failed: {_describe(status, payload)}"
        )
    flows = payload.get("flows") or []
    if not any(f.get("stages") == ["m.login.password"] for f in flows if isinstance(f, dict)):
        stages = sorted({s for f in flows if isinstance(f, dict) for s in f.get("stages", [])})
        raise CrossSigningError(
            "the homeserver wants user-interactive auth the bot cannot do "
            f"(stages offered: {', '.join(stages) or 'none'}). With an OIDC / MAS homeserver, "
            "approve the cross-signing reset for the bot account in its account "
            "management page, then restart the bot."
        )
    if not password:
        raise CrossSigningError(
            "the homeserver asks for the account password to publish cross-signing keys, "
            "and none was given"
        )
    body["auth"] = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": client.user_id},
        "password": password,
    }
    if payload.get("session"):
        body["auth"]["session"] = payload["session"]
    status, payload = await _request(client, "POST", "/keys/device_signing/upload", body)
    if status == 200:
        return True
    if status == 401:
        raise CrossSigningError(
            "the homeserver rejected the bot's password while publishing cross-signing keys "
            f"({payload.get('errcode', '?')})"
        )
    raise CrossSigningError(f"uploading cross-signing keys failed: {_describe(status, payload)}")


# --------------------------------------------------------------------------------------------
# Reading identities from /keys/query
# --------------------------------------------------------------------------------------------


def _single_ed25519(obj: Mapping[str, Any] | None, user_id: str, usage: str) -> str | None:
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


def _verified_self_signing_key(query: Mapping[str, Any], user_id: str) -> tuple[str, str] | None:
    """(master, self-signing) public keys if the SSK is validly signed by the master key."""
    master_obj = (query.get("master_keys") or {}).get(user_id)
    ssk_obj = (query.get("self_signing_keys") or {}).get(user_id)
    master = _single_ed25519(master_obj, user_id, "master")
    ssk = _single_ed25519(ssk_obj, user_id, "self_signing")
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


async def cross_signed_devices(
    client: Any,
    user_ids: Iterable[str],
    expected_master_keys: Mapping[str, str] | None = None,
) -> dict[str, set[str]]:
    """Per user, the device ids validly signed by that user's self-signing key, itself
    validly signed by the user's master key (all checked here, over canonical JSON).

    The master key itself is taken from the homeserver as-is (trust on first use is the
    caller's business): pass ``expected_master_keys`` (user id -> pinned master key) to get
    an empty set for a user whose master key has changed.
    """
    users = list(dict.fromkeys(user_ids))
    if not users:
        return {}
    query = await _query_keys(client, users)
    return devices_cross_signed_in(query, users, expected_master_keys)


# --------------------------------------------------------------------------------------------
# The bot's own identity
# --------------------------------------------------------------------------------------------


def _require_olm(client: Any) -> None:
    if getattr(client, "olm", None) is None or not client.device_id or not client.user_id:
        raise CrossSigningError(
            "the nio client must be logged in with encryption loaded (client.olm is missing)"
        )


async def _own_query(client: Any) -> dict[str, Any]:
    query = await _query_keys(client, [client.user_id])
    own = (query.get("device_keys") or {}).get(client.user_id) or {}
    if client.device_id not in own and getattr(client, "should_upload_keys", False):
        await client.keys_upload()
        query = await _query_keys(client, [client.user_id])
    return query


def _own_device(query: Mapping[str, Any], client: Any) -> dict[str, Any]:
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


def _server_identity(query: Mapping[str, Any], user_id: str) -> dict[str, str | None]:
    return {
        "master": _single_ed25519((query.get("master_keys") or {}).get(user_id), user_id, "master"),
        "self_signing": _single_ed25519(
            (query.get("self_signing_keys") or {}).get(user_id), user_id, "self_signing"
        ),
        "user_signing": _single_ed25519(
            (query.get("user_signing_keys") or {}).get(user_id), user_id, "user_signing"
        ),
    }


async def _sign_own_device(client: Any, keys: CrossSigningKeys, query: Mapping[str, Any]) -> bool:
    """Make sure the current device is signed by our SSK, and our master key by the device.

    Uploads only what is missing; returns whether the device ends up signed (re-checked on
    the server after an upload).
    """
    user_id, device_id = client.user_id, client.device_id
    device = _own_device(query, client)
    ssk = keys.self_signing_public
    master = keys.master_public
    payload: dict[str, Any] = {}

    if not verify_json_signature(device, ssk, user_id, f"ed25519:{ssk}"):
        signed = sign_json(
            _signable(device), keys.private("self_signing"), user_id, f"ed25519:{ssk}"
        )
        payload[device_id] = signed

    master_obj = (query.get("master_keys") or {}).get(user_id) or {}
    dev_pub = device["keys"][f"ed25519:{device_id}"]
    if master_obj and not verify_json_signature(
        master_obj, dev_pub, user_id, f"ed25519:{device_id}"
    ):
        unsigned = _signable(master_obj)
        sig = client.olm.sign_json(unsigned)  # canonical JSON, signed by the device key
        payload[master] = {**unsigned, "signatures": {user_id: {f"ed25519:{device_id}": sig}}}

    if not payload:
        return True
    status, resp = await _request(client, "POST", "/keys/signatures/upload", {user_id: payload})
    if status != 200:
        raise CrossSigningError(f"uploading signatures failed: {_describe(status, resp)}")
    failures = (resp.get("failures") or {}).get(user_id) or {}
    if device_id in failures:
        f = failures[device_id]
        raise CrossSigningError(
            f"the homeserver refused the signature on device {device_id}: "
            f"{f.get('errcode', '?')} {f.get('error', '')}".strip()
        )
    # A refused master-key signature by the device is not fatal (nice-to-have).
    after = await _query_keys(client, [user_id])
    return verify_json_signature(_own_device(after, client), ssk, user_id, f"ed25519:{ssk}")


async def _store_secrets(
    client: Any, keys: CrossSigningKeys, recovery: bytes, key_id: str
) -> None:
    """Publish the key description, the three encrypted seeds, then the default key."""
    description = {
        "name": "carebot recovery key",
        "algorithm": SECRET_STORAGE_ALGORITHM,
        **make_key_check(recovery),
    }
    await _put_account_data(client, KEY_TYPE_PREFIX + key_id, description)
    for role in _ROLES:
        name = SECRET_NAMES[role]
        encrypted = encrypt_secret(recovery, name, b64encode(keys.seed(role)))
        await _put_account_data(client, name, {"encrypted": {key_id: encrypted}})
    await _put_account_data(client, DEFAULT_KEY_TYPE, {"key": key_id})


def _local_key_id(storage_dir: Path) -> str | None:
    try:
        data = json.loads((storage_dir / CROSS_SIGNING_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    key_id = data.get("secret_storage_key_id")
    return key_id if isinstance(key_id, str) and key_id else None


async def _secret_storage_holds(client: Any, key_id: str) -> bool:
    """Whether secret storage has our key as default and all three secrets under it."""
    default = await _get_account_data(client, DEFAULT_KEY_TYPE)
    if (default or {}).get("key") != key_id:
        return False
    if await _get_account_data(client, KEY_TYPE_PREFIX + key_id) is None:
        return False
    for role in _ROLES:
        content = await _get_account_data(client, SECRET_NAMES[role])
        if key_id not in ((content or {}).get("encrypted") or {}):
            return False
    return True


def _new_key_id() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(32))


def _recover_hint(storage_dir: Path) -> str:
    return (
        "Restore it with: carebot recover --recovery-key-file /path/to/recovery-key.txt "
        f"(the file written when the identity was created; it restores {CROSS_SIGNING_FILE} "
        f"in {storage_dir}). The bot never resets an existing identity by itself."
    )


async def ensure_cross_signing(
    client: Any, password: str, storage_dir: Path
) -> CrossSigningStatus:
    """Create the bot's cross-signing identity on first start; afterwards, only make sure the
    current device is signed. Raises :class:`IdentityExists` rather than replacing an identity
    it does not hold the keys of.
    """
    _require_olm(client)
    storage_dir = Path(storage_dir)
    user_id = client.user_id
    query = await _own_query(client)
    server = _server_identity(query, user_id)
    local = _load_local(storage_dir)
    if local is not None and local.user_id != user_id:
        raise CrossSigningError(
            f"{storage_dir / CROSS_SIGNING_FILE} belongs to {local.user_id}, not {user_id}"
        )

    if server["master"] is not None:
        if local is None:
            raise IdentityExists(
                f"{user_id} already has a cross-signing identity on the homeserver "
                f"(master key {server['master']}), but {storage_dir / CROSS_SIGNING_FILE} "
                f"is missing. {_recover_hint(storage_dir)}"
            )
        if local.master_public != server["master"]:
            raise IdentityExists(
                f"the cross-signing identity of {user_id} on the homeserver (master key "
                f"{server['master']}) is not the one in {storage_dir / CROSS_SIGNING_FILE} "
                f"(master key {local.master_public}); it was replaced elsewhere. "
                f"{_recover_hint(storage_dir)}"
            )
        if server["self_signing"] != local.self_signing_public:
            raise IdentityExists(
                f"the self-signing key of {user_id} on the homeserver is not the local one. "
                f"{_recover_hint(storage_dir)}"
            )
        signed = await _sign_own_device(client, local, query)
        return _status(client, local, signed)

    # No identity on the server. Either a fresh start, or a previous start wrote its local
    # files but stopped before publishing: then publish those (the secrets are already in
    # secret storage, and the recovery key file already written).
    recovery_path: Path | None = None
    if local is None:
        keys = CrossSigningKeys.generate(user_id)
        recovery = secrets.token_bytes(32)
        key_id = _new_key_id()
        await _store_secrets(client, keys, recovery, key_id)
        _save_local(storage_dir, keys, key_id)
        recovery_path = _write_recovery_key(storage_dir, encode_recovery_key(recovery), user_id)
        del recovery
    else:
        keys = local
        key_id = _local_key_id(storage_dir)
        if key_id and await _secret_storage_holds(client, key_id):
            candidate = storage_dir / RECOVERY_KEY_FILE
            recovery_path = candidate if candidate.exists() else None
        else:
            # Secret storage lost (e.g. a wiped homeserver): protect the keys afresh.
            recovery = secrets.token_bytes(32)
            key_id = _new_key_id()
            await _store_secrets(client, keys, recovery, key_id)
            _save_local(storage_dir, keys, key_id)
            recovery_path = _write_recovery_key(
                storage_dir, encode_recovery_key(recovery), user_id
            )
            del recovery
    await upload_cross_signing_keys(client, keys, password)
    query = await _query_keys(client, [user_id])
    if _server_identity(query, user_id)["master"] != keys.master_public:
        raise CrossSigningError(
            "the homeserver accepted the cross-signing keys but does not show them"
        )
    signed = await _sign_own_device(client, keys, query)
    return _status(client, keys, signed, created=True, recovery_key_path=recovery_path)


def _status(
    client: Any, keys: CrossSigningKeys, signed: bool, **extra: Any
) -> CrossSigningStatus:
    return CrossSigningStatus(
        user_id=client.user_id,
        device_id=client.device_id,
        master_key=keys.master_public,
        self_signing_key=keys.self_signing_public,
        user_signing_key=keys.user_signing_public,
        device_signed=signed,
        **extra,
    )


async def recover_identity(
    client: Any, recovery_key: str, storage_dir: Path
) -> CrossSigningStatus:
    """Restore the cross-signing private keys from secret storage with the recovery key,
    check them against the published identity, save them locally and sign this device.
    Never creates or uploads new keys.
    """
    _require_olm(client)
    storage_dir = Path(storage_dir)
    user_id = client.user_id
    recovery = decode_recovery_key(recovery_key)  # RecoveryKeyError on typos

    default = await _get_account_data(client, DEFAULT_KEY_TYPE)
    key_id = (default or {}).get("key")
    if not isinstance(key_id, str) or not key_id:
        raise SecretStorageError(
            f"{user_id} has no secret storage (no default key) to recover from"
        )
    key_info = await _get_account_data(client, KEY_TYPE_PREFIX + key_id)
    if key_info is None:
        raise SecretStorageError(f"the secret storage key {key_id} is not described on the server")
    if not check_secret_storage_key(recovery, key_info):
        raise WrongRecoveryKey(
            f"this recovery key is valid but is not the one protecting {user_id}'s secret "
            f"storage (key {key_id}); use the recovery-key.txt written when this identity "
            "was created"
        )

    seeds: dict[str, bytes] = {}
    for role in _ROLES:
        name = SECRET_NAMES[role]
        content = await _get_account_data(client, name)
        enc = ((content or {}).get("encrypted") or {}).get(key_id)
        if enc is None:
            raise SecretStorageError(f"secret storage has no {name} encrypted with key {key_id}")
        try:
            plain = decrypt_secret(recovery, name, enc)
        except SecretStorageError as e:
            raise WrongRecoveryKey(
                f"{name} cannot be decrypted with this recovery key ({e})"
            ) from None
        try:
            seeds[role] = b64decode(plain.decode("ascii"))
        except (UnicodeDecodeError, ValueError) as e:
            raise SecretStorageError(f"{name} in secret storage is not a base64 key") from e
    keys = CrossSigningKeys(user_id, seeds["master"], seeds["self_signing"], seeds["user_signing"])
    del recovery, seeds

    query = await _own_query(client)
    server = _server_identity(query, user_id)
    if server["master"] is None:
        raise CrossSigningError(
            f"{user_id} has no cross-signing identity on the homeserver: nothing to recover "
            "(start the bot normally to create one)"
        )
    for role in _ROLES:
        if server[role] is not None and server[role] != keys.public(role):
            raise CrossSigningError(
                f"the {role} key in secret storage does not match the published one: the "
                "identity was reset without updating secret storage; it cannot be recovered"
            )
    _save_local(storage_dir, keys, key_id)
    signed = await _sign_own_device(client, keys, query)
    return _status(client, keys, signed, recovered=True)


async def recover_with_client(
    client: Any, recovery_key: str, storage_dir: Path
) -> CrossSigningStatus:
    """``carebot recover`` once the lead's code has a logged-in, encryption-loaded client."""
    return await recover_identity(client, recovery_key, Path(storage_dir))


async def _log_out_other_devices(client: Any, password: str) -> list[str]:
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
            await _log_out_other_devices(client, password)
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
