"""bot.matrix.crypto.key_query: which devices a /keys/query response shows cross-signed."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from crypto_vectors import USER

from bot.matrix.crypto.cross_signing_key import CrossSigningKeys
from bot.matrix.crypto.encoding import b64encode
from bot.matrix.crypto.key_query import devices_cross_signed_in, server_identity
from bot.matrix.crypto.signature import sign_json


def _pub(key: Ed25519PrivateKey) -> str:
    return b64encode(key.public_key().public_bytes_raw())


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


def test_server_identity_reads_the_three_published_keys_and_skips_malformed_ones():
    keys = CrossSigningKeys.generate(USER)
    query = {
        "master_keys": {USER: keys.key_object("master")},
        "self_signing_keys": {USER: keys.key_object("self_signing")},
        "user_signing_keys": {USER: {**keys.key_object("user_signing"), "usage": ["master"]}},
    }
    assert server_identity(query, USER) == {
        "master": keys.master_public,
        "self_signing": keys.self_signing_public,
        "user_signing": None,
    }
    assert server_identity({}, USER) == dict.fromkeys(("master", "self_signing", "user_signing"))
    assert server_identity(query, "@other:example.org")["master"] is None
