"""Cross-signing, secret storage (SSSS) and the recovery key, for the bot's own account.

matrix-nio has no cross-signing and no secret storage, but clients that "exclude insecure
devices" (MSC4153) only talk to devices their owner has cross-signed. This package gives the
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

Modules, lowest first (each imports only those above it):

* ``errors``: the exceptions; ``encoding``: unpadded base64, base58;
* ``signature``: canonical JSON, signing and verifying;
* ``ssss.types`` / ``ssss.util`` / ``ssss.key``: secret storage names, primitives, the
  recovery key and one secret's encryption;
* ``files``: 0600 files and the recovery key file; ``cross_signing_key``: the key objects and
  ``cross-signing.json``;
* ``api``: the server calls, through the nio client's public ``send``;
* ``key_query``: reading identities from /keys/query; ``ssss.machine``: secrets in account
  data; ``own_device``: signing the bot's device;
* ``cross_signing``: the identity lifecycle (ensure / recover) and ``cross_signed_devices``;
* ``recover_cli``: ``carebot recover``.

This module re-exports the names the rest of the bot uses. Nothing here logs, and no
exception message carries key material or the password. Wire formats follow the Matrix
client-server spec (cross-signing, secret storage, key representation) and the appendix on
signing JSON.
"""

from __future__ import annotations

from bot.matrix.crypto.api import put_account_data, query_keys, upload_cross_signing_keys
from bot.matrix.crypto.cross_signing import (
    CrossSigningStatus,
    cross_signed_devices,
    ensure_cross_signing,
    recover_identity,
    recover_with_client,
    recovery_key_left_behind,
)
from bot.matrix.crypto.cross_signing_key import (
    CROSS_SIGNING_FILE,
    CrossSigningKeys,
    load_local,
    save_local,
)
from bot.matrix.crypto.encoding import b64decode, b64encode
from bot.matrix.crypto.errors import (
    CrossSigningError,
    IdentityExists,
    RecoveryKeyError,
    SecretStorageError,
    WrongRecoveryKey,
)
from bot.matrix.crypto.files import RECOVERY_KEY_FILE, read_recovery_key_file
from bot.matrix.crypto.key_query import devices_cross_signed_in, server_identity
from bot.matrix.crypto.recover_cli import main_recover
from bot.matrix.crypto.signature import (
    canonical_json,
    sign_json,
    signature_for,
    verify_json_signature,
)
from bot.matrix.crypto.ssss.key import (
    check_secret_storage_key,
    decode_recovery_key,
    decrypt_secret,
    encode_recovery_key,
    encrypt_secret,
    make_key_check,
)
from bot.matrix.crypto.ssss.types import SECRET_STORAGE_ALGORITHM

# The former single module's private names, still used by integration tests.
_load_local = load_local
_save_local = save_local
_query_keys = query_keys
_put_account_data = put_account_data
_server_identity = server_identity

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
    "query_keys",
    "read_recovery_key_file",
    "recover_identity",
    "recover_with_client",
    "recovery_key_left_behind",
    "server_identity",
    "sign_json",
    "signature_for",
    "upload_cross_signing_keys",
    "verify_json_signature",
]
