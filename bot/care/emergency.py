"""The emergency lexicon (policies/emergency.yaml) and the text folding it relies on.

Matching is deliberately generous (a false alarm costs one extra notice; a miss may cost much
more): case- and accent-insensitive, whole words and phrases, tolerant of extra spaces,
punctuation and invisible characters. Negations ("no chest pain") still match, on purpose.

What matched must never be logged: `matched_terms` exists for tests and the CLI only.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator

from bot.yamlutil import ConfigErrors, validate, YamlDoc, load_yaml

FILE_NAME = "emergency.yaml"
KIND = "emergency"
_WORD = re.compile(r"[^\W_]+")


def strip_invisible(text: str) -> str:
    """Remove format characters: zero-width spaces/joiners, bidi overrides, soft hyphens, BOM."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def fold(text: str) -> str:
    """Lowercase, accents removed, invisible characters removed (NFKD + casefold)."""
    decomposed = unicodedata.normalize("NFKD", strip_invisible(text))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    folded = bare.casefold().replace("œ", "oe").replace("æ", "ae")
    return unicodedata.normalize("NFKC", folded)


def fold_words(text: str) -> str:
    """Folded words separated by single spaces: "J'ai  MAL à la poitrine!" -> "j ai mal a la poitrine"."""
    return " ".join(_WORD.findall(fold(text)))


@dataclass(frozen=True)
class WordMatcher:
    """Whole-word / whole-phrase matching of a list of terms. A term ending in '*' matches any
    word starting with it ("suicid*" matches "suicidaire")."""

    terms: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]

    @classmethod
    def of(cls, terms: Iterable[str]) -> WordMatcher:
        terms = tuple(terms)
        return cls(terms, tuple(_compile(t) for t in terms))

    def matched_terms(self, text: str) -> list[str]:
        haystack = f" {fold_words(text)} "
        return [term for term, pattern in zip(self.terms, self.patterns) if pattern.search(haystack)]

    def matches(self, text: str) -> bool:
        haystack = f" {fold_words(text)} "
        return any(p.search(haystack) for p in self.patterns)


def _compile(term: str) -> re.Pattern[str]:
    prefix = term.rstrip().endswith("*")
    words = fold_words(term).split()
    if not words:
        raise ValueError(f"term {term!r} has no letters or digits")
    body = " ".join(re.escape(w) for w in words)
    return re.compile(f" {body}{'[^ ]*' if prefix else ''} ")


class _LexiconFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: str
    terms: dict[str, list[str]]

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v != KIND:
            raise ValueError(f"this file must start with 'kind: {KIND}'. Fix the kind or move the file.")
        return v


@dataclass(frozen=True)
class Lexicon:
    """Emergency terms in French and English."""

    matcher: WordMatcher
    # Per language, the terms no other language's list has (compared folded): what tells that
    # a message is written in that language ("suicid*" in both lists tells nothing).
    exclusive: tuple[tuple[str, WordMatcher], ...] = ()

    @classmethod
    def from_terms(cls, terms: Iterable[str]) -> Lexicon:
        return cls(WordMatcher.of(terms))

    @classmethod
    def from_languages(cls, by_language: dict[str, list[str]]) -> Lexicon:
        folded = {lang: {fold_words(t) + ("*" if t.rstrip().endswith("*") else "") for t in items} for lang, items in by_language.items()}
        exclusive = []
        for lang, items in by_language.items():
            others = set().union(*(f for other, f in folded.items() if other != lang))
            own = [t for t in items if fold_words(t) + ("*" if t.rstrip().endswith("*") else "") not in others]
            if own:
                exclusive.append((lang, WordMatcher.of(own)))
        return cls(WordMatcher.of(t for items in by_language.values() for t in items), tuple(exclusive))

    def languages(self, text: str) -> set[str]:
        """The languages whose own terms (not shared with another list) occur in `text`."""
        return {lang for lang, matcher in self.exclusive if matcher.matches(text)}

    @classmethod
    def load(cls, policies_dir: str | Path) -> Lexicon:
        """Load `<policies_dir>/emergency.yaml`; ConfigErrors on any problem."""
        doc = load_yaml(Path(policies_dir) / FILE_NAME)
        return cls.from_doc(doc)

    @classmethod
    def from_doc(cls, doc: YamlDoc) -> Lexicon:
        if not isinstance(doc.data, dict):
            raise ConfigErrors([doc.error((), f"expected 'kind: {KIND}' and a 'terms:' block with 'fr:' and 'en:' lists.")])
        parsed: _LexiconFile = validate(_LexiconFile, doc)
        errors = []
        for lang in ("fr", "en"):
            if not parsed.terms.get(lang):
                errors.append(doc.error(("terms", lang), f"no '{lang}' terms. Add a '{lang}:' list of emergency words and phrases."))
        for lang in parsed.terms:
            if lang not in ("fr", "en"):
                errors.append(doc.error(("terms", lang), f"unknown language '{lang}'; use 'fr' or 'en'."))
        terms: dict[str, list[str]] = {}
        for lang, items in parsed.terms.items():
            for i, term in enumerate(items):
                if not fold_words(term):
                    errors.append(doc.error(("terms", lang, i), "this term has no letters or digits. Remove it or fix it."))
                else:
                    terms.setdefault(lang, []).append(term)
        if errors:
            raise ConfigErrors(errors)
        return cls.from_languages(terms)

    @property
    def terms(self) -> tuple[str, ...]:
        return self.matcher.terms

    def matches(self, text: str) -> bool:
        return self.matcher.matches(text)

    def matched_terms(self, text: str) -> list[str]:
        """For tests and the CLI only: NEVER log the result."""
        return self.matcher.matched_terms(text)
