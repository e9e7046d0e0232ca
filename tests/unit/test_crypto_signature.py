"""bot.matrix.crypto.signature: canonical JSON, signing and verifying signed JSON.

Known-answer vectors: the JSON-signing examples of the Matrix spec appendix (seed YJDBA9Xn…).
"""

from __future__ import annotations

import math

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.matrix.crypto.encoding import b64decode, b64encode
from bot.matrix.crypto.signature import canonical_json, sign_json, verify_json_signature

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
