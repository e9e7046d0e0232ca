"""bot.matrix.crypto.encoding: unpadded base64 and base58."""

from __future__ import annotations

import pytest

from bot.matrix.crypto.encoding import Base58Error, b58decode, b58encode, b64decode, b64encode


def test_base64_is_unpadded_out_and_tolerant_in():
    assert b64encode(b"\0") == "AA"
    assert b64decode("AA") == b64decode("AA==") == b"\0"
    with pytest.raises(ValueError):
        b64decode("A*A")


@pytest.mark.parametrize("data", [b"", b"\0", b"\0\0\x01", b"hello world", bytes(range(256))])
def test_base58_round_trips_and_keeps_leading_zero_bytes(data):
    text = b58encode(data)
    assert b58decode(text) == data
    assert text.startswith("1" * (len(data) - len(data.lstrip(b"\0"))))


def test_base58_uses_the_bitcoin_alphabet():
    assert b58encode(b"hello world") == "StV1DL6CwTryKyV"
    assert b58encode(b"\0\0\x01") == "112"


@pytest.mark.parametrize("char", ["0", "O", "I", "l", "+", " "])
def test_base58_names_the_character_it_refuses(char):
    with pytest.raises(Base58Error) as info:
        b58decode("abc" + char + "def")
    assert info.value.char == char
    assert isinstance(info.value, ValueError)
