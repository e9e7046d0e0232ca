"""Pure formats of bot.matrix.crypto: canonical JSON, signatures, recovery keys, secret storage.

Known-answer vectors: the JSON-signing examples of the Matrix spec appendix (seed
YJDBA9Xn…), the recovery key used across Matrix SDK test suites (the RFC 7748 test key
encodes to "EsTc LW2K …"), and matrix-rust-sdk's secret-storage key-check and base58
parsing vectors.
"""

from __future__ import annotations

import json
import math
import stat
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.matrix.crypto import (
    CROSS_SIGNING_FILE,
    SECRET_STORAGE_ALGORITHM,
    CrossSigningError,
    CrossSigningKeys,
    RecoveryKeyError,
    SecretStorageError,
    _load_local,
    _save_local,
    b64decode,
    b64encode,
    canonical_json,
    check_secret_storage_key,
    decode_recovery_key,
    decrypt_secret,
    devices_cross_signed_in,
    encode_recovery_key,
    encrypt_secret,
    main_recover,
    make_key_check,
    read_recovery_key_file,
    sign_json,
    verify_json_signature,
)

# ---------------------------------------------------------------- canonical JSON


def test_canonical_json_sorts_and_strips_whitespace():
    assert canonical_json({}) == "{}"
    assert canonical_json({"one": 1, "two": "Two"}) == '{"one":1,"two":"Two"}'
    assert canonical_json({"b": "2", "a": "1"}) == '{"a":"1","b":"2"}'
    nested = {"auth": {"success": True, "mxid": "@john.doe:example.com", "profile": {
        "display_name": "John Doe", "three_pids": [
            {"medium": "email", "address": "john.doe@example.org"},
            {"medium": "msisdn", "address": "123456789"}]}}}
    assert canonical_json(nested) == (
        '{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe",'
        '"three_pids":[{"address":"john.doe@example.org","medium":"email"},'
        '{"address":"123456789","medium":"msisdn"}]},"success":true}}'
    )


def test_canonical_json_keeps_utf8_and_sorts_by_codepoint():
    assert canonical_json({"a": "日本語"}) == '{"a":"日本語"}'
    assert canonical_json({"本": 2, "日": 1}) == '{"日":1,"本":2}'
    assert canonical_json({"a": "\u65e5"}) == '{"a":"日"}'
    assert canonical_json({"a": None}) == '{"a":null}'
    assert canonical_json({"a": "\n\x00"}) == '{"a":"\\n\\u0000"}'


def test_canonical_json_refuses_nan():
    with pytest.raises(ValueError):
        canonical_json({"a": math.nan})


# ---------------------------------------------------------------- signatures

SPEC_SEED = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
SIG_EMPTY = "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
SIG_ONE_TWO = (
    "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"
)


@pytest.fixture
def spec_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(b64decode(SPEC_SEED))


def _pub(key: Ed25519PrivateKey) -> str:
    return b64encode(key.public_key().public_bytes_raw())


def test_sign_json_matches_spec_vectors(spec_key):
    assert sign_json({}, spec_key, "domain", "ed25519:1") == {
        "signatures": {"domain": {"ed25519:1": SIG_EMPTY}}
    }
    signed = sign_json({"one": 1, "two": "Two"}, spec_key, "domain", "ed25519:1")
    assert signed["signatures"]["domain"]["ed25519:1"] == SIG_ONE_TWO
    assert signed["one"] == 1 and signed["two"] == "Two"


def test_sign_json_ignores_signatures_and_unsigned_and_keeps_others(spec_key):
    obj = {"one": 1, "two": "Two", "unsigned": {"age": 5},
           "signatures": {"other": {"ed25519:x": "abc"}}}
    signed = sign_json(obj, spec_key, "domain", "ed25519:1")
    assert signed["signatures"]["domain"]["ed25519:1"] == SIG_ONE_TWO
    assert signed["signatures"]["other"] == {"ed25519:x": "abc"}
    assert "domain" not in obj["signatures"], "input must not be mutated"


def test_verify_json_signature(spec_key):
    pub = _pub(spec_key)
    signed = sign_json({"one": 1, "two": "Two"}, spec_key, "domain", "ed25519:1")
    assert verify_json_signature(signed, pub, "domain", "ed25519:1")
    assert verify_json_signature({**signed, "unsigned": {"x": 1}}, pub, "domain", "ed25519:1")
    assert not verify_json_signature({**signed, "one": 2}, pub, "domain", "ed25519:1")
    assert not verify_json_signature(signed, pub, "domain", "ed25519:2")
    assert not verify_json_signature(signed, pub, "other", "ed25519:1")
    other = _pub(Ed25519PrivateKey.generate())
    assert not verify_json_signature(signed, other, "domain", "ed25519:1")
    assert not verify_json_signature({"one": 1}, pub, "domain", "ed25519:1")
    garbage = {"one": 1, "signatures": {"domain": {"ed25519:1": "!!notbase64"}}}
    assert not verify_json_signature(garbage, pub, "domain", "ed25519:1")
    assert not verify_json_signature(signed, "short", "domain", "ed25519:1")


def test_base64_is_unpadded_out_and_tolerant_in():
    assert b64encode(b"\0") == "AA"
    assert b64decode("AA") == b64decode("AA==") == b"\0"
    with pytest.raises(ValueError):
        b64decode("A*A")


# ---------------------------------------------------------------- recovery key

RFC7748_KEY = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
RFC7748_RECOVERY = "EsTc LW2K PGiF wKEA 3As5 g5c4 BXwk qeeJ ZJV8 Q9fu gUMN UE4d"


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


def test_read_recovery_key_file_skips_comments(tmp_path):
    path = tmp_path / "k.txt"
    path.write_text("# a comment\n\n  " + RFC7748_RECOVERY + "  \n")
    assert read_recovery_key_file(path) == RFC7748_RECOVERY
    path.write_text("# nothing\n")
    with pytest.raises(RecoveryKeyError):
        read_recovery_key_file(path)


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


# ---------------------------------------------------------------- cross-signing keys

USER = "@bot:example.org"


def test_key_objects_are_well_formed_and_signed_by_master():
    keys = CrossSigningKeys.generate(USER)
    master = keys.key_object("master")
    assert master == {"user_id": USER, "usage": ["master"],
                      "keys": {f"ed25519:{keys.master_public}": keys.master_public}}
    for role in ("self_signing", "user_signing"):
        obj = keys.key_object(role)
        assert obj["usage"] == [role]
        assert obj["keys"] == {f"ed25519:{keys.public(role)}": keys.public(role)}
        assert verify_json_signature(obj, keys.master_public, USER, f"ed25519:{keys.master_public}")
    assert len({keys.master_public, keys.self_signing_public, keys.user_signing_public}) == 3


def test_repr_never_shows_seeds():
    keys = CrossSigningKeys.generate(USER)
    text = repr(keys)
    for role in ("master", "self_signing", "user_signing"):
        assert b64encode(keys.seed(role)) not in text


def test_local_file_round_trip_is_private(tmp_path):
    keys = CrossSigningKeys.generate(USER)
    _save_local(tmp_path / "state", keys, "KEYID")
    path = tmp_path / "state" / CROSS_SIGNING_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["master"]["public"] == keys.master_public
    assert data["secret_storage_key_id"] == "KEYID"
    loaded = _load_local(tmp_path / "state")
    assert loaded is not None
    for role in ("master", "self_signing", "user_signing"):
        assert loaded.seed(role) == keys.seed(role)
    assert _load_local(tmp_path / "nothing") is None
    data["master"]["public"] = keys.self_signing_public
    path.write_text(json.dumps(data))
    with pytest.raises(CrossSigningError, match="does not match"):
        _load_local(tmp_path / "state")


# ---------------------------------------------------------------- device trust from /keys/query


def _device(user_id: str, device_id: str) -> tuple[dict, Ed25519PrivateKey]:
    dk = Ed25519PrivateKey.generate()
    obj = {
        "user_id": user_id, "device_id": device_id,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
        "keys": {f"ed25519:{device_id}": _pub(dk), f"curve25519:{device_id}": b64encode(b"c" * 32)},
    }
    return sign_json(obj, dk, user_id, f"ed25519:{device_id}"), dk


def _query_for(keys: CrossSigningKeys, devices: dict) -> dict:
    return {
        "device_keys": {keys.user_id: devices},
        "master_keys": {keys.user_id: keys.key_object("master")},
        "self_signing_keys": {keys.user_id: keys.key_object("self_signing")},
    }


def _ssk_sign(keys: CrossSigningKeys, device: dict) -> dict:
    return sign_json(device, keys.private("self_signing"), keys.user_id,
                     f"ed25519:{keys.self_signing_public}")


def test_devices_cross_signed_in():
    keys = CrossSigningKeys.generate(USER)
    good, _ = _device(USER, "GOOD")
    unsigned, _ = _device(USER, "UNSIGNED")
    tampered, _ = _device(USER, "TAMPERED")
    misfiled, _ = _device(USER, "MISFILED")
    wrong_signer, _ = _device(USER, "WRONGSIGNER")
    stranger = CrossSigningKeys.generate(USER)
    tampered = _ssk_sign(keys, tampered)
    tampered["keys"]["curve25519:TAMPERED"] = b64encode(b"d" * 32)
    devices = {
        "GOOD": _ssk_sign(keys, good),
        "UNSIGNED": unsigned,
        "TAMPERED": tampered,
        "ELSEWHERE": _ssk_sign(keys, misfiled),  # signed, but filed under another id
        "WRONGSIGNER": _ssk_sign(stranger, wrong_signer),
    }
    query = _query_for(keys, devices)
    assert devices_cross_signed_in(query, [USER]) == {USER: {"GOOD"}}
    assert devices_cross_signed_in(query, [USER], {USER: keys.master_public}) == {USER: {"GOOD"}}
    assert devices_cross_signed_in(query, [USER], {USER: stranger.master_public}) == {USER: set()}
    assert devices_cross_signed_in(query, ["@nobody:x"]) == {"@nobody:x": set()}


def test_self_signing_key_must_be_signed_by_master():
    keys = CrossSigningKeys.generate(USER)
    good, _ = _device(USER, "GOOD")
    query = _query_for(keys, {"GOOD": _ssk_sign(keys, good)})
    ssk = dict(query["self_signing_keys"][USER])
    ssk.pop("signatures")
    query["self_signing_keys"][USER] = ssk
    assert devices_cross_signed_in(query, [USER]) == {USER: set()}
    query = _query_for(keys, {"GOOD": _ssk_sign(keys, good)})
    query["master_keys"][USER] = CrossSigningKeys.generate(USER).key_object("master")
    assert devices_cross_signed_in(query, [USER]) == {USER: set()}


def test_device_needs_its_own_signature_too():
    keys = CrossSigningKeys.generate(USER)
    dev, _ = _device(USER, "DEV")
    dev = dict(dev)
    dev.pop("signatures")
    query = _query_for(keys, {"DEV": _ssk_sign(keys, dev)})
    assert devices_cross_signed_in(query, [USER]) == {USER: set()}


# ---------------------------------------------------------------- CLI glue


def test_main_recover_reports_a_typo_before_anything_else(tmp_path, capsys):
    path = tmp_path / "recovery-key.txt"
    path.write_text(RFC7748_RECOVERY[:-1] + "e\n")
    assert main_recover(SimpleNamespace(config=None, recovery_key_file=path)) == 2
    assert "typo" in capsys.readouterr().err
    assert main_recover(SimpleNamespace(config=None, recovery_key_file=tmp_path / "no")) == 2
    path.write_text(RFC7748_RECOVERY + "\n")
    missing_config = tmp_path / "missing.yaml"
    assert main_recover(SimpleNamespace(config=missing_config, recovery_key_file=path)) == 2
