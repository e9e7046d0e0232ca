from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.care.commands import COMMANDS, Command, CommandError, help_text, parse, usage
from bot.care.texts import Texts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("!help", Command("help")),
        ("!AIDE", Command("help")),
        ("  !Aide  ", Command("help")),
        ("!renew Levothyroxine 75 µg", Command("renew", medication="Levothyroxine 75 µg")),
        ("!renouveler   lévothyroxine\t75  µg ", Command("renew", medication="lévothyroxine 75 µg")),
        ("!status", Command("status")),
        ("!statut s'il vous plaît", Command("status")),
        ("!cancel R7", Command("cancel", request_id=7)),
        ("!annuler #r12", Command("cancel", request_id=12)),
        ("!approve R7", Command("approve", request_id=7)),
        ("!accepter R7 à prendre au secrétariat", Command("approve", request_id=7, note="à prendre au secrétariat")),
        ("!deny R7: consultation nécessaire", Command("deny", request_id=7, reason="consultation nécessaire")),
        ("!refuser 7 voir\nen consultation", Command("deny", request_id=7, reason="voir\nen consultation")),
        ("!pending", Command("pending")),
        ("!ATTENTE", Command("pending")),
        ("!Renouvéler doliprane", Command("renew", medication="doliprane")),  # accents tolerated in names
    ],
)
def test_parses_english_and_french_commands(text: str, expected: Command):
    assert parse(text) == expected


@pytest.mark.parametrize("text", ["hello", "", "   ", "!!!", "!!! help me", "! hello", "!", "!?", "!7", "je veux !renew x", "?!help"])
def test_messages_that_are_not_commands(text: str):
    assert parse(text) is None


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("!frobnicate", CommandError(None, "unknown_command")),
        ("!renew", CommandError("renew", "missing_argument", "medication")),
        ("!renew   \u200b ", CommandError("renew", "missing_argument", "medication")),
        ("!cancel", CommandError("cancel", "missing_argument", "request_id")),
        ("!cancel seven", CommandError("cancel", "invalid_request_id", "request_id")),
        ("!deny R7", CommandError("deny", "missing_argument", "reason")),
        ("!approve", CommandError("approve", "missing_argument", "request_id")),
        ("!renew a\x00b", CommandError("renew", "control_characters")),
        ("!renew \x1b[31mred", CommandError("renew", "control_characters")),
    ],
)
def test_malformed_commands_give_a_reason(text: str, error: CommandError):
    assert parse(text) == error


def test_overlong_input_is_refused():
    assert parse("!renew " + "x" * 50, max_length=20) == CommandError("renew", "too_long")
    assert parse("!nope " + "x" * 50, max_length=20) == CommandError(None, "too_long")


def test_invisible_characters_are_stripped_from_names_and_args():
    assert parse("\u200b!re\u200dnew Levo\u200bthyroxine \u202e75 µg") == Command("renew", medication="Levothyroxine 75 µg")
    assert parse("\ufeff!aide") == Command("help")


def test_usage_lines_come_from_the_declarations():
    assert usage("renew", "en") == "!renew <medication>"
    assert usage("renew", "fr") == "!renouveler <médicament>"
    assert usage("approve", "fr") == "!accepter <id> [note]"
    assert usage("refuser", "en") == "!deny <id> <reason>"


def test_help_lists_every_command_in_both_languages():
    texts = Texts.default()
    for locale in ("fr", "en"):
        text = help_text(locale, texts=texts)
        for spec in COMMANDS:
            assert f"!{spec.name}" in text and f"!{spec.name_fr}" in text


def test_help_for_a_role_lists_only_its_commands():
    text = help_text("en", role="patient")
    assert "!renew" in text and "!help" in text and "!approve" not in text
    text = help_text("fr", role="practitioner")
    assert "!accepter" in text and "!renouveler" not in text


def test_commands_carry_their_role():
    assert parse("!renew x").role == "patient"
    assert parse("!deny R1 no").role == "practitioner"
    assert parse("!help").role == "anyone"


# --- properties -----------------------------------------------------------------------


@given(st.text())
def test_parse_never_raises_and_returns_a_known_type(text: str):
    assert parse(text) is None or isinstance(parse(text), (Command, CommandError))


@given(st.text())
def test_only_bang_letter_starts_a_command(text: str):
    result = parse(text)
    visible = "".join(ch for ch in text if unicodedata.category(ch) != "Cf").lstrip()
    if not (len(visible) >= 2 and visible[0] == "!" and visible[1].isalpha()):
        assert result is None


words = st.text(alphabet=st.characters(categories=("L", "N")), min_size=1, max_size=12)


@given(st.lists(words, min_size=1, max_size=5), st.sampled_from(["renew", "renouveler", "RENEW", "Renouveler"]), st.sampled_from([" ", "  ", "\t", " \u200b"]))
def test_renew_keeps_the_medication_words(med_words: list[str], name: str, sep: str):
    result = parse(f"!{name}{sep}{sep.join(med_words)}  ")
    assert result == Command("renew", medication=" ".join(med_words))


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(["R{}", "r{}", "#R{}", "{}"]), st.sampled_from(["approve", "accepter", "cancel", "annuler"]))
def test_request_ids_are_parsed_whatever_their_spelling(n: int, fmt: str, name: str):
    result = parse(f"!{name} {fmt.format(n)}")
    assert isinstance(result, Command) and result.request_id == n


@given(st.text(min_size=1), st.integers(min_value=10, max_value=200))
def test_too_long_is_always_reported_when_over_the_limit(tail: str, limit: int):
    text = "!renew " + "a" * limit + tail
    assert parse(text, max_length=limit) == CommandError("renew", "too_long")
