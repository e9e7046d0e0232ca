"""Shared known-answer values for the bot.matrix.crypto unit tests."""

from __future__ import annotations

# RFC 7748's test key and its Matrix recovery-key form, as used across Matrix SDK test suites.
RFC7748_KEY = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
RFC7748_RECOVERY = "EsTc LW2K PGiF wKEA 3As5 g5c4 BXwk qeeJ ZJV8 Q9fu gUMN UE4d"

USER = "@bot:example.org"
