"""bot.matrix.crypto.own_device: the bot signs only its own, loaded device."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bot.matrix.crypto.errors import CrossSigningError
from bot.matrix.crypto.own_device import own_device, require_olm

USER, DEVICE = "@bot:example.org", "DEV"
IDENTITY = {"ed25519": "ED", "curve25519": "CURVE"}


def _client(olm: object = None) -> SimpleNamespace:
    olm = olm or SimpleNamespace(account=SimpleNamespace(identity_keys=IDENTITY))
    return SimpleNamespace(user_id=USER, device_id=DEVICE, olm=olm)


def _query(**overrides: object) -> dict:
    device = {
        "user_id": USER,
        "device_id": DEVICE,
        "keys": {f"ed25519:{DEVICE}": "ED", f"curve25519:{DEVICE}": "CURVE"},
        **overrides,
    }
    return {"device_keys": {USER: {DEVICE: device}}}


def test_a_client_without_encryption_is_refused():
    client = _client()
    client.olm = None
    with pytest.raises(CrossSigningError, match="client.olm is missing"):
        require_olm(client)
    require_olm(_client())


def test_own_device_returns_the_device_holding_this_process_keys():
    assert own_device(_query(), _client())["device_id"] == DEVICE


def test_own_device_refuses_keys_that_are_not_this_process():
    foreign = {f"ed25519:{DEVICE}": "OTHER", f"curve25519:{DEVICE}": "CURVE"}
    with pytest.raises(CrossSigningError, match="refusing to sign them"):
        own_device(_query(keys=foreign), _client())
    with pytest.raises(CrossSigningError, match="refusing to sign them"):
        own_device(_query(user_id="@mallory:example.org"), _client())
    with pytest.raises(CrossSigningError, match="device DEV has no keys on the homeserver"):
        own_device({"device_keys": {}}, _client())
