"""Byte encodings Matrix uses for keys: unpadded base64 and the base58 of recovery keys."""

from __future__ import annotations

import base64

__all__ = [
    "Base58Error",
    "b58decode",
    "b58encode",
    "b64decode",
    "b64encode",
    "b64encode_padded",
]

_BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {c: i for i, c in enumerate(_BASE58_ALPHABET)}


class Base58Error(ValueError):
    """A character outside the base58 (Bitcoin) alphabet; ``char`` is the culprit."""

    def __init__(self, char: str) -> None:
        super().__init__(f"{char!r} is not a base58 character")
        self.char = char


def b64encode(data: bytes) -> str:
    """Unpadded standard base64, the Matrix default."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def b64decode(text: str) -> bytes:
    """Standard base64, padded or not (clients disagree on padding)."""
    text = text.strip().rstrip("=")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def b64encode_padded(data: bytes) -> str:
    """Padded standard base64 (what Element writes in secret storage)."""
    return base64.b64encode(data).decode("ascii")


def b58encode(data: bytes) -> str:
    """Base58 with the Bitcoin alphabet; leading zero bytes become leading '1's."""
    n = int.from_bytes(data, "big")
    out: list[str] = []
    while n:
        n, r = divmod(n, 58)
        out.append(_BASE58_ALPHABET[r])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    """Reverse of :func:`b58encode`; raises :class:`Base58Error` on a foreign character."""
    n = 0
    for ch in text:
        try:
            n = n * 58 + _BASE58_INDEX[ch]
        except KeyError:
            raise Base58Error(ch) from None
    pad = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * pad + body
