"""Which of a patient's treatments a renewal request designates, written the way patients write.

`understand("Levothyrox 75 1 cp", synonyms)` reads the text as a medication: folded (case,
accents, invisible characters), brand names and abbreviations replaced by the clinic's
synonyms (policies/synonyms.yaml), units spelled one way (µg = mcg = microgrammes = ug),
galenic forms ("comprimé", "gélule", "cp") and quantities ("1 cp", "boîte de 30") dropped.
What remains is a name and doses. `match` then compares it with the treatments of a pair:

- same name, compatible doses -> that treatment ("75" matches "75 µg": a missing unit is
  tolerated; "0,075 mg" matches "75 µg" and "1000" matches "1 g": mass units are converted);
- the name alone (no dose) or a shorter name ("levothyroxine" for "Levothyroxine sodique")
  -> every treatment it fits; one is a match, several are ambiguous (the patient is asked);
- long-term treatments are preferred over others that fit equally.

The deny list is checked on the same understood text (see `deny_forms`), with Unicode
confusable skeletons (UTS #39, from the `disarm` library) so that a Cyrillic "о" or a
capital "I" written for "l" cannot slip a denied medication through.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType

from disarm import skeleton_key

from bot.care.emergency import fold, fold_words, strip_invisible
from bot.care.medication import clean_medication, medication_name, normalize_medication
from bot.care.roster import Pair, Treatment
from bot.yamlutil import ConfigError, ConfigErrors, YamlDoc, load_yaml

FILE_NAME = "synonyms.yaml"
KIND = "synonyms"

# Unit spellings -> one canonical unit.
UNITS: Mapping[str, str] = MappingProxyType(
    {
        "ug": "ug", "mcg": "ug", "microgramme": "ug", "microgrammes": "ug", "microgram": "ug",
        "micrograms": "ug", "microg": "ug", "γ": "ug", "gamma": "ug",
        "mg": "mg", "milligramme": "mg", "milligrammes": "mg", "milligram": "mg", "milligrams": "mg",
        "g": "g", "gr": "g", "gramme": "g", "grammes": "g", "gram": "g", "grams": "g",
        "ml": "ml", "millilitre": "ml", "millilitres": "ml", "milliliter": "ml", "milliliters": "ml",
        "ui": "ui", "iu": "ui", "u": "ui", "unites": "ui", "unite": "ui", "units": "ui", "unit": "ui",
        "%": "%",
    }
)
_MICROGRAMS = {"ug": Decimal(1), "mg": Decimal(1000), "g": Decimal(1_000_000)}

# Galenic forms and their usual abbreviations on French prescriptions (folded).
FORMS = frozenset(
    """
    comprime comprimes cp cps cpr cprs cpe comp compr tablet tablets tab tabs pill pills
    gelule gelules gel gelu capsule capsules caps cap
    secable secables pellicule pellicules enrobe enrobes effervescent effervescents
    orodispersible orodispersibles dispersible dispersibles lyoc
    sachet sachets sach dose doses unidose unidoses
    sirop solution buvable buvables suspension gouttes goutte gtt ampoule ampoules
    injectable injectables seringue seringues stylo stylos
    suppositoire suppositoires suppo suppos creme pommade gel collyre spray inhalateur
    patch patchs dispositif transdermique
    """.split()
)
# Words that carry no meaning for matching (folded).
FILLER = frozenset(
    """
    de d du des le la les l un une mon ma mes mon en a au aux et pour par svp merci stp
    jour jours j matin midi soir nuit semaine fois x boite boites
    my the of a an please per day daily box for
    """.split()
)
_QUANTITY_MAX = 10  # "1 cp", "2 gélules": a small count before a form is a quantity, not a dose


@dataclass(frozen=True)
class Dose:
    value: Decimal
    unit: str | None

    def compatible(self, other: Dose) -> bool:
        """Same dose. A bare number fits the same number in any unit, and also the same mass in
        another mass unit ("1000" fits "1 g": patients write "Doliprane 1000")."""
        if self.unit is None and other.unit is None:
            return self.value == other.value
        if self.unit is None or other.unit is None:
            bare, given = (self, other) if self.unit is None else (other, self)
            if bare.value == given.value:
                return True
            return given.unit in _MICROGRAMS and any(Dose(bare.value, u).compatible(given) for u in _MICROGRAMS)
        if self.unit in _MICROGRAMS and other.unit in _MICROGRAMS:
            return self.value * _MICROGRAMS[self.unit] == other.value * _MICROGRAMS[other.unit]
        return self.unit == other.unit and self.value == other.value

    def __str__(self) -> str:
        return f"{self.value.normalize():f}" + (f" {self.unit}" if self.unit else "")


@dataclass(frozen=True)
class Understood:
    """A medication as understood: name words (synonyms applied, forms dropped) and doses."""

    name: tuple[str, ...]
    doses: tuple[Dose, ...]

    @property
    def key(self) -> str:
        """A comparable one-line form: "levothyroxine 75 ug"."""
        return " ".join([*self.name, *(str(d) for d in self.doses)])


@dataclass(frozen=True)
class Synonyms:
    """Brand names and abbreviations -> the name used in the roster (folded phrases)."""

    table: Mapping[tuple[str, ...], tuple[str, ...]] = field(default_factory=dict)
    digest: bytes = b""

    @classmethod
    def load(cls, policies_dir: str | Path) -> Synonyms:
        """`<policies_dir>/synonyms.yaml` if it exists; ConfigErrors names file, line and key."""
        path = Path(policies_dir) / FILE_NAME
        if not path.exists():
            return cls()
        return cls.from_doc(load_yaml(path), path.read_bytes())

    @classmethod
    def from_doc(cls, doc: YamlDoc, digest: bytes = b"") -> Synonyms:
        errors: list[ConfigError] = []
        data = doc.data
        if not isinstance(data, dict):
            raise ConfigErrors([doc.error((), f"expected 'kind: {KIND}' and a 'synonyms:' block.")])
        for key in data:
            if key not in ("kind", "synonyms"):
                errors.append(doc.error((key,), f"unknown key '{key}'; allowed keys: kind, synonyms. Remove it."))
        if data.get("kind") != KIND:
            errors.append(doc.error(("kind",), f"this file must contain 'kind: {KIND}'. Fix the kind."))
        block = data.get("synonyms")
        if not isinstance(block, dict):
            errors.append(doc.error(("synonyms",), "expected a block like 'levothyroxine: [levothyrox, l-thyroxine]'."))
            block = {}
        table: dict[tuple[str, ...], tuple[str, ...]] = {}
        owner: dict[tuple[str, ...], str] = {}
        for name, others in block.items():
            target = tuple(fold_words(str(name)).split())
            if not target:
                errors.append(doc.error(("synonyms", str(name)), "this name has no letters. Write the medication's name as in the roster."))
                continue
            if not isinstance(others, list) or not others:
                errors.append(doc.error(("synonyms", str(name)), "expected a list of other names, like [levothyrox, l-thyroxine]."))
                continue
            for i, other in enumerate(others):
                words = tuple(fold_words(str(other)).split())
                where = ("synonyms", str(name), i)
                if not words or any(w[0].isdigit() for w in words):
                    errors.append(doc.error(where, "a synonym needs letters and no dose. Write the name only (like 'levothyrox')."))
                elif words in owner and table[words] != target:
                    errors.append(doc.error(where, f"'{other}' is already a synonym of '{owner[words]}'. Keep it under one name only."))
                elif words != target:
                    table[words] = target
                    owner[words] = str(name)
        if errors:
            raise ConfigErrors(errors)
        return cls(MappingProxyType(table), digest)

    def apply(self, words: Sequence[str]) -> list[str]:
        """Replace every synonym phrase (longest first) by its roster name."""
        if not self.table:
            return list(words)
        longest = max(len(k) for k in self.table)
        out: list[str] = []
        i = 0
        while i < len(words):
            for n in range(min(longest, len(words) - i), 0, -1):
                target = self.table.get(tuple(words[i : i + n]))
                if target is not None:
                    out.extend(target)
                    i += n
                    break
            else:
                out.append(words[i])
                i += 1
        return out


NO_SYNONYMS = Synonyms()


def _tokens(text: str, split_names: bool = True) -> list[str]:
    """Folded tokens with numbers and units apart: "Lévothyroxine 75µg/j" -> [levothyroxine, 75, ug, j].

    With `split_names=False`, a word that starts with letters keeps its digits ("b12", "d3":
    part of the name), except a lone "x" before a count ("x30").
    """
    s = fold(text).replace("μ", "u").replace("µ", "u")
    if not split_names:
        s = re.sub(r"\b\d{1,3}(?:[ \u00a0\u202f]\d{3})+\b", lambda m: re.sub(r"\D", "", m.group(0)), s)  # 100 000 -> 100000
    s = re.sub(r"(?<=\d),(?=\d)", ".", s)  # 2,5 -> 2.5
    s = re.sub(r"[^\w.%]|_", " ", s)
    s = re.sub(r"(?<=\d)(?=[^\W\d_]|%)", " ", s)  # 75ug -> 75 ug
    if split_names:
        s = re.sub(r"(?<=[^\W\d_])(?=\d)", " ", s)  # b12 -> b 12
    else:
        s = re.sub(r"\bx(?=\d)", "x ", s)  # x30 -> x 30
    return [t.strip(".") for t in s.split() if t.strip(".")]


def _number(token: str) -> Decimal | None:
    if not token[:1].isdigit():
        return None
    try:
        return Decimal(token)
    except InvalidOperation:
        return None


def understand(text: str, synonyms: Synonyms = NO_SYNONYMS) -> Understood:
    """Read a medication as written by a patient or in the roster (see the module doc)."""
    words = synonyms.apply(_tokens(text, split_names=False))
    numbers = sum(1 for w in words if _number(w) is not None)
    name: list[str] = []
    doses: list[Dose] = []
    i = 0
    while i < len(words):
        w = words[i]
        value = _number(w)
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if value is not None:
            if nxt in FORMS and numbers > 1 and value <= _QUANTITY_MAX:
                i += 2  # "1 cp": a quantity
                numbers -= 1
                continue
            before = words[max(0, i - 2) : i]
            if before[-1:] in (["x"], ["boite"], ["boites"]) or before in (["boite", "de"], ["boites", "de"]):
                i += 1  # "x30", "boîte de 30"
                continue
            unit = UNITS.get(nxt)
            doses.append(Dose(value, unit))
            i += 2 if unit else 1
            continue
        if w not in FORMS and w not in FILLER and w not in UNITS:
            name.append(w)
        i += 1
    return Understood(tuple(name), tuple(doses))


def _doses_fit(wanted: Sequence[Dose], have: Sequence[Dose]) -> bool:
    if not wanted or not have:
        return True  # no dose given (ambiguity is decided by the caller), or none in the roster
    return len(wanted) == len(have) and all(a.compatible(b) for a, b in zip(wanted, have))


@dataclass(frozen=True)
class MatchResult:
    """`treatment` when exactly one fits; `candidates` (2+) when ambiguous; neither when none."""

    treatment: object | None
    candidates: tuple[object, ...] = ()

    @property
    def ambiguous(self) -> bool:
        return len(self.candidates) > 1


def match(treatments: Iterable[object], text: str, synonyms: Synonyms = NO_SYNONYMS) -> MatchResult:
    """The treatment (objects with `.name` and `.long_term`) that `text` designates."""
    wanted = understand(text, synonyms)
    if not wanted.name:
        return MatchResult(None)
    items = [(t, understand(t.name, synonyms)) for t in treatments]  # type: ignore[attr-defined]
    exact = [(t, u) for t, u in items if u.name == wanted.name and _doses_fit(wanted.doses, u.doses)]
    partial = [
        (t, u)
        for t, u in items
        if set(wanted.name) < set(u.name) and _doses_fit(wanted.doses, u.doses)
    ]
    for level in (exact, partial):
        if not level:
            continue
        # Several entries that read the same (a roster listing a treatment twice) are one.
        by_key: dict[str, list[object]] = {}
        for t, u in level:
            by_key.setdefault(u.key, []).append(t)
        chosen = [sorted(group, key=lambda t: not t.long_term)[0] for group in by_key.values()]  # type: ignore[attr-defined]
        long_term = [t for t in chosen if t.long_term]  # type: ignore[attr-defined]
        chosen = long_term or chosen
        if len(chosen) == 1:
            return MatchResult(chosen[0])
        return MatchResult(None, tuple(chosen))
    return MatchResult(None)


def match_treatment(pair: Pair | None, medication: str, synonyms: Synonyms = NO_SYNONYMS) -> Treatment | None:
    """The single treatment of this pair that `medication` designates, or None."""
    if pair is None:
        return None
    return match(pair.care.treatments, medication, synonyms).treatment  # type: ignore[return-value]


# --- deny list ---------------------------------------------------------------------------


def deny_forms(text: str, synonyms: Synonyms = NO_SYNONYMS) -> tuple[str, ...]:
    """Every reading of `text` a deny-list term is looked for in (whole words).

    Folded text; the understood medication (synonyms applied); and the UTS #39 confusable
    skeleton of the text as written and in capitals. Capitals matter because the skeleton
    sends a capital "I" to "l" ("ZoIpidem" -> "zolpidem") while folding case first would
    turn it into an "i"; the capitalised skeleton of the term ("ZOLPIDEM" -> "zolpldem")
    meets text written in capitals with an "I" for "l".
    """
    clean = strip_invisible(text)
    forms = {
        fold_words(clean),
        _join_letters(fold_words(clean)),
        " ".join(understand(clean, synonyms).name),
        " ".join(synonyms.apply(fold_words(clean).split())),
        fold_words(skeleton_key(clean)),
        fold_words(skeleton_key(clean.upper())),
    }
    return tuple(sorted(f for f in forms if f))


def _join_letters(words: str) -> str:
    """Runs of single letters written apart are one word: "z o l p i d e m 10" -> "zolpidem 10"."""
    return re.sub(r"\b(?:[^\W\d_] ){2,}[^\W\d_]\b", lambda m: m.group(0).replace(" ", ""), words)


def term_forms(term: str) -> tuple[str, ...]:
    """The readings of a deny-list term, compared with `deny_forms` of the text."""
    forms = {fold_words(term), fold_words(skeleton_key(term)), fold_words(skeleton_key(term.upper()))}
    return tuple(sorted(f for f in forms if f))


def contains_term(forms: Iterable[str], term: str, prefix: bool = False) -> bool:
    """True if one of the term's readings appears as whole words in one of `forms`."""
    patterns = [re.compile(f" {re.escape(t)}{'[^ ]*' if prefix else ''} ") for t in term_forms(term.rstrip('*'))]
    return any(p.search(f" {f} ") for f in forms for p in patterns)


__all__ = [
    "Dose",
    "MatchResult",
    "NO_SYNONYMS",
    "Synonyms",
    "Understood",
    "clean_medication",
    "contains_term",
    "deny_forms",
    "match",
    "match_treatment",
    "medication_name",
    "normalize_medication",
    "term_forms",
    "understand",
]
