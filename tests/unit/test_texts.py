from __future__ import annotations

from pathlib import Path

import pytest
from unit_helpers import REPO, write

from bot.care.texts import Texts, placeholders
from bot.yamlutil import ConfigErrors

REQUIRED_KEYS = [
    "disclaimer", "topic", "emergency_notice", "help_intro", "renewal_pending", "renewal_ineligible",
    "renewal_approved", "renewal_approved_note", "renewal_denied", "renewal_cancelled", "status_header",
    "status_item", "status_empty", "pending_header", "pending_item", "pending_empty", "unknown_request",
    "not_your_request", "not_allowed_for_role", "stranger_refusal", "usage", "unknown_command", "too_long",
    "channel_closed", "intruder_removed", "undecryptable", "flood_limited", "already_decided",
]  # fmt: skip


@pytest.fixture(scope="module")
def texts() -> Texts:
    return Texts.default()


def test_defaults_have_every_key_in_both_languages_with_the_same_placeholders(texts: Texts):
    assert set(REQUIRED_KEYS) <= set(texts.keys())
    for key in texts.keys():
        assert placeholders(texts.table[key]["fr"]) == placeholders(texts.table[key]["en"]), key


@pytest.mark.parametrize("locale", ["fr", "en"])
def test_disclaimer_lists_every_emergency_number(texts: Texts, locale: str):
    text = texts.get("disclaimer", locale)
    for needle in ("15", "SAMU", "112", "114", "SMS", "3114"):
        assert needle in text
    assert ("urgence" if locale == "fr" else "emergency") in text
    assert ("pas être lus rapidement" if locale == "fr" else "may not be read quickly") in text


@pytest.mark.parametrize("locale", ["fr", "en"])
def test_topic_is_one_line_with_15_and_112(texts: Texts, locale: str):
    topic = texts.get("topic", locale)
    assert "\n" not in topic and "15" in topic and "112" in topic


@pytest.mark.parametrize("locale", ["fr", "en"])
def test_emergency_notice_says_call_now(texts: Texts, locale: str):
    notice = texts.get("emergency_notice", locale)
    for number in ("15", "112", "114", "3114"):
        assert number in notice


def test_get_fills_placeholders_and_rejects_bugs(texts: Texts):
    assert texts.get("renewal_denied", "en", id="R7", medication="X", reason="See me first.").count("See me first.") == 1
    with pytest.raises(KeyError):
        texts.get("renewal_denied", "en", id="R7")
    with pytest.raises(KeyError):
        texts.get("no_such_key", "en")
    with pytest.raises(ValueError):
        texts.get("topic", "de")


def test_shipped_texts_file_loads(texts: Texts):
    assert Texts.load(REPO / "policies") == texts


def test_missing_texts_file_means_defaults(tmp_path: Path, texts: Texts):
    assert Texts.load(tmp_path) == texts


def test_clinic_overrides_one_language_of_one_key(tmp_path: Path, texts: Texts):
    write(tmp_path / "texts.yaml", 'kind: texts\ntexts:\n  renewal_cancelled:\n    fr: "C\'est annulé : {id} ({medication})."\n')
    loaded = Texts.load(tmp_path)
    assert loaded.get("renewal_cancelled", "fr", id="R1", medication="X") == "C'est annulé : R1 (X)."
    assert loaded.get("renewal_cancelled", "en", id="R1", medication="X") == texts.get("renewal_cancelled", "en", id="R1", medication="X")


def test_clinic_file_errors_name_file_line_and_key(tmp_path: Path):
    f = write(
        tmp_path / "texts.yaml",
        """\
        kind: texts
        texts:
          renewal_denyed:
            fr: "x"
          renewal_denied:
            fr: "Refusé : {reason} {oops}"
            de: "Nein"
          disclaimer:
            en: "Not an emergency service. Call 15 or 112."
          usage:
            fr: "Utilisation : {usage"
        """,
    )
    with pytest.raises(ConfigErrors) as info:
        Texts.load(tmp_path)
    errs = info.value.errors
    by_key: dict[str, list] = {}
    for e in errs:
        assert e.file == str(f)
        by_key.setdefault(e.key, []).append(e)
    assert by_key["texts.renewal_denyed"][0].line == 3 and "known keys" in by_key["texts.renewal_denyed"][0].message
    messages = " ".join(e.message for e in by_key["texts.renewal_denied.fr"])
    assert "unknown placeholder {oops}" in messages and "missing placeholder {id}, {medication}" in messages
    assert by_key["texts.renewal_denied.de"][0].line == 7
    assert {e.message for e in by_key["texts.disclaimer.en"]} == {
        "must mention the emergency number 114. Add it back.",
        "must mention the emergency number 3114. Add it back.",
    }
    assert "unbalanced" in by_key["texts.usage.fr"][0].message


def test_wrong_kind_is_reported(tmp_path: Path):
    write(tmp_path / "texts.yaml", "kind: rules\ntexts: {}\n")
    with pytest.raises(ConfigErrors) as info:
        Texts.load(tmp_path)
    assert info.value.errors[0].key == "kind" and info.value.errors[0].line == 1


@pytest.mark.parametrize("key", ["desk_pair_help", "desk_only_here"])
def test_answers_to_the_practitioner_in_a_pair_room_are_fit_for_the_patient_who_reads_them(texts: Texts, key: str):
    # Posted in the pair room, they are read by the patient too: nothing that speaks to the
    # practitioner alone ("your desk", "the patient does not see it", "write to the patient").
    fr = texts.get(key, "fr", link="https://matrix.to/#/%21d", command="!absent")
    en = texts.get(key, "en", link="https://matrix.to/#/%21d", command="!away")
    assert "bureau du praticien" in fr or "son bureau" in fr
    assert "practitioner's desk" in en or "their desk" in en
    for text in (fr, en):
        for addressed in ("votre bureau", "your desk", "ne voit pas", "does not see", "écrivez simplement au patient", "write to the patient"):
            assert addressed not in text, (key, text)
