from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from unit_helpers import REPO, write

from bot.care.emergency import Lexicon, fold_words
from bot.yamlutil import ConfigErrors


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon.load(REPO / "policies")


@pytest.mark.parametrize(
    "text",
    [
        "J'ai une douleur thoracique depuis ce matin",
        "DOULEUR   THORACIQUE",
        "j'ai mal a la poitrine",
        "j'ai mal à la poitrine !!",
        "J’étouffe",  # typographic apostrophe
        "je n'arrive plus à respirer",
        "difficulté à respirer",
        "Je suis suicidaire",
        "j'ai envie de mourir",
        "je vais me tuer",
        "I want to kill myself",
        "I can't breathe",
        "I cant breathe",
        "chest pain since noon",
        "Chest-pain",
        "j'ai pris une surdose",
        "overdosed on my pills",
        "mon mari a fait un malaise",
        "perte de connaissance",
        "je crois que c'est un AVC",
        "l'AVC de ma mère",
        "signs of a stroke",
        "saignement abondant",
        "sui\u200bcide",
        "douleur\u00a0thoracique",
        "œdème de Quincke",
        "oedeme de quincke",
    ],
)
def test_emergencies_match(lexicon: Lexicon, text: str):
    assert lexicon.matches(text), text


@pytest.mark.parametrize(
    "text",
    [
        "Bonjour, je voudrais renouveler mon Levothyrox",
        "davc",  # 'avc' only as a whole word
        "avcx",
        "the chest is heavy to carry",  # words apart, not the phrase
        "I can breathe fine",
        "respirer",
        "",
    ],
)
def test_ordinary_messages_do_not_match(lexicon: Lexicon, text: str):
    assert not lexicon.matches(text)


def test_matched_terms_names_what_matched(lexicon: Lexicon):
    assert "avc" in lexicon.matched_terms("AVC ?")
    assert lexicon.matched_terms("bonjour") == []


def test_lexicon_needs_both_languages(tmp_path: Path):
    write(tmp_path / "emergency.yaml", "kind: emergency\nterms:\n  fr: [avc]\n  de: [schlaganfall]\n")
    with pytest.raises(ConfigErrors) as info:
        Lexicon.load(tmp_path)
    keys = {e.key: e for e in info.value.errors}
    assert "terms.en" in keys and keys["terms.de"].line == 4


def test_lexicon_file_errors_are_located(tmp_path: Path):
    write(tmp_path / "emergency.yaml", "kind: texts\nterms:\n  fr: [avc]\n  en: ['!!']\n")
    with pytest.raises(ConfigErrors) as info:
        Lexicon.load(tmp_path)
    keys = {e.key: e for e in info.value.errors}
    assert "kind: emergency" in keys["kind"].message and keys["kind"].line == 1
    with pytest.raises(ConfigErrors) as info:
        Lexicon.load(tmp_path / "missing")
    assert "file not found" in str(info.value)


def test_wildcard_terms_match_word_prefixes():
    lex = Lexicon.from_terms(["suicid*"])
    assert lex.matches("suicidaire") and lex.matches("SUICIDER") and not lex.matches("presuicide")


@given(st.sampled_from(["douleur thoracique", "AVC", "envie de mourir", "chest pain"]), st.text(max_size=20), st.text(max_size=20))
def test_terms_match_when_surrounded_by_spaces(term: str, before: str, after: str):
    lex = Lexicon.from_terms([term])
    assert lex.matches(f"{before} {term} {after}")


@given(st.text())
def test_fold_words_is_idempotent(text: str):
    assert fold_words(fold_words(text)) == fold_words(text)
