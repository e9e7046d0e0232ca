"""Medication names as patients write them: normalized for comparison (the key stored with each
request: keep it stable) and tidied for display. Matching against a pair's treatments, with
synonyms, forms and units, is in matching.py."""

from __future__ import annotations

import re

from bot.care.emergency import fold, strip_invisible

_UNITS = {
    "mcg": "ug",
    "microgramme": "ug",
    "microgrammes": "ug",
    "microgram": "ug",
    "micrograms": "ug",
    "milligramme": "mg",
    "milligrammes": "mg",
    "milligram": "mg",
    "milligrams": "mg",
    "gramme": "g",
    "grammes": "g",
    "gram": "g",
    "grams": "g",
}


def normalize_medication(text: str) -> str:
    """Comparable form of a medication: "Lévothyroxine 75µg" -> "levothyroxine 75 ug".

    Case, accents, invisible characters and spacing are ignored; µg/μg/mcg/ug are the same;
    "2,5 mg" == "2.5 mg". Idempotent.
    """
    s = fold(text).replace("μ", "u")
    s = re.sub(r"(?<=\d),(?=\d)", ".", s)
    s = re.sub(r"[^\w.%]|_", " ", s)
    s = re.sub(r"(?<=\d)(?=[^\W\d_]|%)", " ", s)  # 75ug -> 75 ug
    s = re.sub(r"(?<=[^\W\d_])(?=\d)", " ", s)  # b12 -> b 12
    tokens = []
    for token in s.split():
        token = token.strip(".")
        if token:
            tokens.append(_UNITS.get(token, token))
    return " ".join(tokens)


def medication_name(normalized: str) -> str:
    """The name part of a normalized medication (the words before the first number)."""
    words = []
    for token in normalized.split():
        if token[0].isdigit():
            break
        words.append(token)
    return " ".join(words)


def clean_medication(text: str) -> str:
    """The user's text, tidied for display: invisible characters removed, spaces collapsed."""
    return " ".join(strip_invisible(text).split())
