"""bot.matrix.crypto.cross_signing_key: the three keys and cross-signing.json (0600)."""

from __future__ import annotations

import json
import stat

import pytest
from crypto_vectors import USER

from bot.matrix.crypto.cross_signing_key import (
    CROSS_SIGNING_FILE,
    CrossSigningKeys,
    load_local,
    local_key_id,
    save_local,
)
from bot.matrix.crypto.encoding import b64encode
from bot.matrix.crypto.errors import CrossSigningError
from bot.matrix.crypto.signature import verify_json_signature


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
    save_local(tmp_path / "state", keys, "KEYID")
    path = tmp_path / "state" / CROSS_SIGNING_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["master"]["public"] == keys.master_public
    assert data["secret_storage_key_id"] == "KEYID"
    loaded = load_local(tmp_path / "state")
    assert loaded is not None
    for role in ("master", "self_signing", "user_signing"):
        assert loaded.seed(role) == keys.seed(role)
    assert load_local(tmp_path / "nothing") is None
    data["master"]["public"] = keys.self_signing_public
    path.write_text(json.dumps(data))
    with pytest.raises(CrossSigningError, match="does not match"):
        load_local(tmp_path / "state")


def test_local_key_id_is_read_back_and_absent_when_unknown(tmp_path):
    keys = CrossSigningKeys.generate(USER)
    assert local_key_id(tmp_path) is None
    save_local(tmp_path, keys, None)
    assert local_key_id(tmp_path) is None
    save_local(tmp_path, keys, "KEYID")
    assert local_key_id(tmp_path) == "KEYID"


def test_a_seed_of_the_wrong_length_is_refused():
    with pytest.raises(CrossSigningError, match="master private key is not 32 bytes"):
        CrossSigningKeys(USER, b"short", b"\1" * 32, b"\2" * 32)


def test_an_unknown_local_file_version_is_refused():
    data = CrossSigningKeys.generate(USER).to_json()
    data["version"] = 2
    with pytest.raises(CrossSigningError, match=f"unknown {CROSS_SIGNING_FILE} version 2"):
        CrossSigningKeys.from_json(data)
