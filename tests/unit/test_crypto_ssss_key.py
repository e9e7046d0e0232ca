"""bot.matrix.crypto.ssss.key: the recovery key, the key check, one secret's encryption.

Known-answer vectors: the recovery key used across Matrix SDK test suites (the RFC 7748 test
key encodes to "EsTc LW2K …"), and matrix-rust-sdk's secret-storage key-check and base58
parsing vectors.
"""

from __future__ import annotations

import pytest
from crypto_vectors import RFC7748_KEY, RFC7748_RECOVERY

from bot.matrix.crypto.encoding import b64decode, b64encode
from bot.matrix.crypto.errors import RecoveryKeyError, SecretStorageError
from bot.matrix.crypto.ssss.key import (
    check_secret_storage_key,
    decode_recovery_key,
    decrypt_secret,
    encode_recovery_key,
    encrypt_secret,
    make_key_check,
)
from bot.matrix.crypto.ssss.types import SECRET_STORAGE_ALGORITHM

# ---------------------------------------------------------------- recovery key

def test_recovery_key_known_vector():
    assert encode_recovery_key(RFC7748_KEY) == RFC7748_RECOVERY
    assert decode_recovery_key(RFC7748_RECOVERY) == RFC7748_KEY


@pytest.mark.parametrize(
    "text",
    [
        RFC7748_RECOVERY.replace(" ", ""),
        "  " + RFC7748_RECOVERY + "\n",
        RFC7748_RECOVERY.replace(" g5c4 ", "\r\ng5c4\t"),
    ],
)
def test_recovery_key_whitespace_is_insignificant(text):
    assert decode_recovery_key(text) == RFC7748_KEY


def test_recovery_key_rust_sdk_parsing_vector():
    expected = bytes([
        159, 189, 70, 187, 52, 81, 113, 198, 246, 2, 44, 154, 37, 213, 104, 27,
        165, 78, 236, 106, 108, 73, 83, 243, 173, 192, 185, 110, 157, 145, 173, 163,
    ])
    messy = "EsT           pRvZTnjck8    YrhRAtw XLS84Nr2r9S9LGAWDaExVAPBvLRK   "
    assert decode_recovery_key(messy) == expected


@pytest.mark.parametrize("seed", [b"\0" * 32, b"\xff" * 32, bytes(range(32))])
def test_recovery_key_round_trip(seed):
    text = encode_recovery_key(seed)
    groups = text.split(" ")
    assert all(len(g) == 4 for g in groups[:-1]) and 1 <= len(groups[-1]) <= 4
    assert text.startswith("Es")
    assert decode_recovery_key(text) == seed


def test_recovery_key_bad_parity():
    with pytest.raises(RecoveryKeyError, match="typo"):
        decode_recovery_key("EsTpRvZTnjck8YrhRAtwXLS84Nr2r9S9LGAWDaExVAPBvLRk")
    with pytest.raises(RecoveryKeyError, match="typo"):
        decode_recovery_key(RFC7748_RECOVERY[:-1] + "e")


def test_recovery_key_bad_prefix():
    with pytest.raises(RecoveryKeyError, match="prefix"):
        decode_recovery_key("AATpRvZTnjck8YrhRAtwXLS84Nr2r9S9LGAWDaExVAPBvLRk")


def test_recovery_key_bad_length_and_characters():
    with pytest.raises(RecoveryKeyError, match="bytes instead of 35"):
        decode_recovery_key("AATpRvZTnjck8YrhRAtwXLS84Nr2r9S9")
    with pytest.raises(RecoveryKeyError, match="'0'"):
        decode_recovery_key("AATpRvZTnjck8YrhRAtwXLS84Nr0OIl")
    with pytest.raises(RecoveryKeyError, match="empty"):
        decode_recovery_key("   ")
    with pytest.raises(ValueError):
        encode_recovery_key(b"short")


def test_recovery_key_error_is_a_value_error():
    assert issubclass(RecoveryKeyError, ValueError)


# ---------------------------------------------------------------- secret storage

RUST_SSSS_KEY = "EsTj 3yST y93F SLpB jJsz eAXc 2XzA ygD3 w69H fGaN TKBj jXEd"
RUST_SSSS_INFO = {
    "algorithm": SECRET_STORAGE_ALGORITHM,
    "iv": "xv5b6/p3ExEw++wTyfSHEg==",
    "mac": "ujBBbXahnTAMkmPUX2/0+VTfUh63pGyVRuBcDMgmJC8=",
}


def test_key_check_known_vector():
    key = decode_recovery_key(RUST_SSSS_KEY)
    assert check_secret_storage_key(key, RUST_SSSS_INFO)
    unpadded = {k: v.rstrip("=") for k, v in RUST_SSSS_INFO.items()}
    assert check_secret_storage_key(key, unpadded)
    assert make_key_check(key, b64decode(RUST_SSSS_INFO["iv"])) == {
        "iv": RUST_SSSS_INFO["iv"], "mac": RUST_SSSS_INFO["mac"]
    }
    assert not check_secret_storage_key(RFC7748_KEY, RUST_SSSS_INFO)


def test_key_check_edge_cases():
    key = b"\x01" * 32
    assert check_secret_storage_key(key, {"algorithm": SECRET_STORAGE_ALGORITHM})
    with pytest.raises(SecretStorageError, match="unsupported"):
        check_secret_storage_key(key, {**RUST_SSSS_INFO, "algorithm": "m.secret_storage.custom"})
    with pytest.raises(SecretStorageError):
        check_secret_storage_key(key, {**RUST_SSSS_INFO, "iv": b64encode(b"\0" * 14)})


def test_encrypt_decrypt_round_trip():
    key = bytes(range(32))
    name = "m.cross_signing.master"
    secret = b64encode(b"\x07" * 32)
    enc = encrypt_secret(key, name, secret)
    assert set(enc) == {"iv", "ciphertext", "mac"}
    assert len(b64decode(enc["iv"])) == 16 and len(b64decode(enc["mac"])) == 32
    assert b64decode(enc["iv"])[8] & 0x80 == 0, "bit 63 of the IV must be clear"
    assert decrypt_secret(key, name, enc) == secret.encode()
    assert enc["ciphertext"] != b64encode(secret.encode())
    again = encrypt_secret(key, name, secret)
    assert again["iv"] != enc["iv"] and again["ciphertext"] != enc["ciphertext"]


def test_encryption_is_deterministic_given_the_iv_and_depends_on_the_name():
    key, iv = b"\x02" * 32, b"\x03" * 16
    a = encrypt_secret(key, "m.cross_signing.master", "x" * 43, iv)
    assert a == encrypt_secret(key, "m.cross_signing.master", "x" * 43, iv)
    b = encrypt_secret(key, "m.cross_signing.self_signing", "x" * 43, iv)
    assert a["ciphertext"] != b["ciphertext"]


def test_decrypt_rejects_bad_mac():
    key = b"\x05" * 32
    name = "m.cross_signing.self_signing"
    enc = encrypt_secret(key, name, "secret text")
    with pytest.raises(SecretStorageError, match="integrity"):
        decrypt_secret(b"\x06" * 32, name, enc)
    with pytest.raises(SecretStorageError, match="integrity"):
        decrypt_secret(key, "m.cross_signing.master", enc)
    flipped = bytearray(b64decode(enc["ciphertext"]))
    flipped[0] ^= 1
    with pytest.raises(SecretStorageError, match="integrity"):
        decrypt_secret(key, name, {**enc, "ciphertext": b64encode(bytes(flipped))})
    with pytest.raises(SecretStorageError, match="integrity"):
        decrypt_secret(key, name, {**enc, "mac": b64encode(b"\0" * 32)})
    with pytest.raises(SecretStorageError, match="malformed"):
        decrypt_secret(key, name, {"iv": enc["iv"]})
