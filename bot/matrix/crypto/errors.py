"""Errors of the cross-signing package; messages are written for a clinic admin.

No message carries key material or the password.
"""

from __future__ import annotations

__all__ = [
    "CrossSigningError",
    "IdentityExists",
    "RecoveryKeyError",
    "SecretStorageError",
    "WrongRecoveryKey",
]


class CrossSigningError(Exception):
    """Cross-signing or secret storage could not be set up; the message says why."""


class IdentityExists(CrossSigningError):
    """The account already has a cross-signing identity that this installation cannot use."""


class SecretStorageError(CrossSigningError):
    """Secret storage is missing, malformed, or failed its integrity check (MAC)."""


class RecoveryKeyError(CrossSigningError, ValueError):
    """The recovery key text is malformed (typo, wrong length, not a Matrix recovery key)."""


class WrongRecoveryKey(RecoveryKeyError):
    """The recovery key is well formed but is not the one protecting this account's secrets."""
