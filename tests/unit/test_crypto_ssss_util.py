"""bot.matrix.crypto.ssss.util: key derivation, AES-CTR, IVs and key ids."""

from __future__ import annotations

import string

from bot.matrix.crypto.ssss.util import aes_ctr, derive_keys, new_iv, new_key_id


def test_derived_keys_depend_on_the_secret_name_and_are_stable():
    key = b"\x01" * 32
    aes, mac = derive_keys(key, "m.cross_signing.master")
    assert len(aes) == len(mac) == 32 and aes != mac
    assert derive_keys(key, "m.cross_signing.master") == (aes, mac)
    assert derive_keys(key, "m.cross_signing.self_signing") != (aes, mac)


def test_aes_ctr_is_its_own_inverse():
    key, iv = b"\x02" * 32, b"\x03" * 16
    data = b"twenty-nine bytes of plaintext"
    encrypted = aes_ctr(key, iv, data)
    assert encrypted != data and len(encrypted) == len(data)
    assert aes_ctr(key, iv, encrypted) == data


def test_new_iv_clears_bit_63_and_varies():
    ivs = {new_iv() for _ in range(50)}
    assert len(ivs) == 50
    assert all(len(iv) == 16 and iv[8] & 0x80 == 0 for iv in ivs)


def test_new_key_id_is_32_alphanumerics():
    key_id = new_key_id()
    assert len(key_id) == 32 and set(key_id) <= set(string.ascii_letters + string.digits)
    assert new_key_id() != key_id
