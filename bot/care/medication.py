"""Medication names as patients write them: normalized for comparison, tidied for display,
and matched against a pair's treatments."""

from __future__ import annotations

import re

from bot.care.emergency import fold, strip_invisible
from bot.care.roster import Pair, Treatment

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


def match_treatment(pair: Pair | None, medication: str) -> Treatment | None:
    """The treatment of this pair that `medication` designates, or None.

    Exact match (after normalization) first, long-term treatments preferred. Then, if the
    user gave a name without a dose: the single long-term treatment with that name.
    """
    if pair is None:
        return None
    wanted = normalize_medication(medication)
    if not wanted:
        return None
    treatments = sorted(pair.care.treatments, key=lambda t: not t.long_term)
    for t in treatments:
        if normalize_medication(t.name) == wanted:
            return t
    if medication_name(wanted) == wanted:
        same_name = [t for t in pair.long_term_treatments if medication_name(normalize_medication(t.name)) == wanted]
        if len(same_name) == 1:
            return same_name[0]
    return None
