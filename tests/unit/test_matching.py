"""Medication matching as patients write it (bot/care/matching.py), with the shipped synonyms."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from unit_helpers import REPO, ROSTER, write

from bot.care.matching import Synonyms, contains_term, deny_forms, match, understand
from bot.care.policy import EligibilityContext, Policies
from bot.care.roster import Roster
from bot.yamlutil import ConfigErrors


@dataclass(frozen=True)
class T:
    name: str
    long_term: bool = True


SYN = Synonyms.load(REPO / "policies")

# A patient's long-term treatments, written as French prescriptions and rosters write them.
TREATMENTS = (
    T("Levothyroxine 75 µg"),
    T("Kardégic 75 mg"),
    T("Paracétamol 1 g"),
    T("Bisoprolol 2,5 mg"),
    T("Metformine 850 mg"),
    T("Amoxicilline 1 g", long_term=False),
)

# (what the patient typed, the treatment it designates or None)
SPELLINGS = [
    # case, accents, spacing
    ("levothyroxine 75 µg", "Levothyroxine 75 µg"),
    ("LÉVOTHYROXINE   75 µg", "Levothyroxine 75 µg"),
    ("Lévothyroxine 75µg", "Levothyroxine 75 µg"),
    # unit spellings
    ("Levothyroxine 75 mcg", "Levothyroxine 75 µg"),
    ("levothyroxine 75mcg", "Levothyroxine 75 µg"),
    ("levothyroxine 75 microgrammes", "Levothyroxine 75 µg"),
    ("levothyroxine 75 ug", "Levothyroxine 75 µg"),
    ("levothyroxine 75 μg", "Levothyroxine 75 µg"),  # Greek mu
    ("levothyroxine 0,075 mg", "Levothyroxine 75 µg"),  # converted
    # a missing unit
    ("levothyroxine 75", "Levothyroxine 75 µg"),
    ("Bisoprolol 2.5", "Bisoprolol 2,5 mg"),
    # a missing or extra galenic form, and a quantity
    ("Levothyroxine 75 µg comprimé", "Levothyroxine 75 µg"),
    ("levothyroxine 75 1 cp", "Levothyroxine 75 µg"),
    ("1 cp de levothyroxine 75", "Levothyroxine 75 µg"),
    ("Metformine 850 mg, 2 gélules par jour", "Metformine 850 mg"),
    ("metformine 850 cp pelliculé", "Metformine 850 mg"),
    ("Doliprane 1 g boîte de 8", "Paracétamol 1 g"),
    # brand names and abbreviations (policies/synonyms.yaml)
    ("Levothyrox 75", "Levothyroxine 75 µg"),
    ("levothyrox 75 µg", "Levothyroxine 75 µg"),
    ("L-Thyroxine 75 mcg", "Levothyroxine 75 µg"),
    ("Doliprane 1000 mg", "Paracétamol 1 g"),
    ("doliprane 1g", "Paracétamol 1 g"),
    ("paracetamol 1000", "Paracétamol 1 g"),  # a bare 1000 is 1000 mg
    ("Doliprane 1000", "Paracétamol 1 g"),
    ("Doliprane 500", None),
    ("Dafalgan 1 g", "Paracétamol 1 g"),
    ("Kardégic 75", "Kardégic 75 mg"),
    ("kardegic 75mg sachet", "Kardégic 75 mg"),
    ("aspirine 75 mg", "Kardégic 75 mg"),
    ("acide acétylsalicylique 75 mg", "Kardégic 75 mg"),
    ("AAS 75", "Kardégic 75 mg"),
    ("Glucophage 850", "Metformine 850 mg"),
    # the name alone: the single long-term treatment with that name
    ("levothyrox", "Levothyroxine 75 µg"),
    ("Doliprane", "Paracétamol 1 g"),
    # no match: another dose, another medication, nothing at all
    ("levothyroxine 100 µg", None),
    ("Levothyrox 75 mg", None),  # mg is not µg
    ("Ramipril 5 mg", None),
    ("1 cp", None),
    ("comprimé", None),
]


@pytest.mark.parametrize(("typed", "expected"), SPELLINGS)
def test_real_world_french_spellings_match_the_treatment(typed: str, expected: str | None) -> None:
    found = match(TREATMENTS, typed, SYN)
    assert getattr(found.treatment, "name", None) == expected
    assert not found.ambiguous


def test_without_the_synonyms_file_brand_names_do_not_match() -> None:
    assert match(TREATMENTS, "Levothyrox 75").treatment is None
    assert match(TREATMENTS, "Levothyroxine 75").treatment == TREATMENTS[0]


def test_two_doses_of_one_medication_are_ambiguous_without_a_dose() -> None:
    treatments = (T("Levothyroxine 75 µg"), T("Levothyroxine 25 µg"), T("Ramipril 5 mg"))
    found = match(treatments, "Levothyrox", SYN)
    assert found.treatment is None and found.ambiguous
    assert [t.name for t in found.candidates] == ["Levothyroxine 75 µg", "Levothyroxine 25 µg"]
    assert match(treatments, "Levothyrox 25", SYN).treatment == treatments[1]


def test_a_shorter_name_fits_a_longer_one_and_long_term_is_preferred() -> None:
    treatments = (T("Acide folique 5 mg", long_term=False), T("Levothyroxine sodique 75 µg"))
    assert match(treatments, "levothyroxine 75", SYN).treatment == treatments[1]
    # "acide" alone fits both the aspirin (via Kardégic) and folic acid: long-term wins.
    both = (T("Acide folique 5 mg", long_term=False), T("Kardégic 75 mg"))
    assert match(both, "acide", SYN).treatment == both[1]


def test_letters_and_digits_in_a_name_stay_part_of_the_name() -> None:
    treatments = (T("Vitamine B12 1000 µg"), T("Vitamine D3 100 000 UI"), T("Levothyroxine 75 µg"))
    assert match(treatments, "vitamine b12", SYN).treatment == treatments[0]
    assert match(treatments, "Vitamine B12 1000", SYN).treatment == treatments[0]
    assert match(treatments, "vitamine d3", SYN).treatment == treatments[1]
    assert match(treatments, "Vitamine D3 100000 UI", SYN).treatment == treatments[1]  # "100 000" is one number
    assert match(treatments, "vitamine", SYN).ambiguous
    assert understand("Levothyrox 75 x30", SYN).key == "levothyroxine 75"


def test_the_same_treatment_listed_twice_is_not_ambiguous() -> None:
    treatments = (T("Levothyroxine 75 µg"), T("levothyroxine 75 mcg"))
    assert match(treatments, "levothyrox", SYN).treatment == treatments[0]


def test_understood_form_drops_forms_quantities_and_fillers() -> None:
    assert understand("1 cp de Doliprane 1000 mg le matin", SYN).key == "paracetamol 1000 mg"
    assert understand("Levothyrox 75µg/j", SYN).key == "levothyroxine 75 ug"


# --- deny list: the same normalised text, with confusable skeletons (UTS #39) ------------------

DENIED = [
    "Zolpidem 10 mg",
    "ZOLPIDEM",
    "Zоlpidem",  # Cyrillic о
    "ZoIpidem",  # capital I for l
    "ZOIPIDEM",  # capitals with an I for the L
    "Ｚｏｌｐｉｄｅｍ",  # fullwidth
    "Zol\u200bpidem",  # zero-width space
    "z o l p i d e m",
    "Stilnox 10",
    "mоrphine",  # Cyrillic о
]


@pytest.mark.parametrize("typed", DENIED)
def test_deny_list_sees_through_confusables(typed: str) -> None:
    forms = deny_forms(typed, SYN)
    assert contains_term(forms, "zolpidem") or contains_term(forms, "stilnox") or contains_term(forms, "morphine")


@pytest.mark.parametrize("typed", ["Levothyroxine 75 µg", "Doliprane 1000", "Kardégic 75", "Zopiclone"])
def test_deny_list_does_not_hit_other_medications(typed: str) -> None:
    assert not contains_term(deny_forms(typed, SYN), "zolpidem")


@pytest.fixture
def roster(tmp_path: Path) -> Roster:
    return Roster.load(write(tmp_path / "roster" / "roster.yaml", ROSTER))


@pytest.mark.parametrize("typed", ["Zоlpidem 10 mg", "ZoIpidem 10 mg"])
def test_confusable_zolpidem_is_denied_even_without_the_long_term_rule(tmp_path: Path, roster: Roster, typed: str) -> None:
    policies_dir = tmp_path / "policies"
    policies_dir.mkdir()
    text = (REPO / "policies" / "renewals.yaml").read_text(encoding="utf-8")
    start = text.index("  # The medication is one of the patient's long-term treatments")
    end = text.index("  # Never renewed through messaging")
    write(policies_dir / "renewals.yaml", text[:start] + text[end:])
    policies = Policies.load(policies_dir)
    assert "long-term-treatment" not in [r.id for r in policies.rules]
    decision = policies.evaluate(EligibilityContext(roster.pair("pat-0001", "dr-martin"), typed, date(2026, 10, 1)))
    assert not decision.eligible
    assert decision.failed_rule_ids == ("no-narcotics-or-hypnotics",)


def test_synonyms_are_part_of_the_policy_hash(tmp_path: Path) -> None:
    d = tmp_path / "policies"
    write(d / "renewals.yaml", (REPO / "policies" / "renewals.yaml").read_text(encoding="utf-8"))
    before = Policies.load(d).policy_hash()
    write(d / "synonyms.yaml", "kind: synonyms\nsynonyms:\n  levothyroxine: [levothyrox]\n")
    after = Policies.load(d)
    assert after.policy_hash() != before
    assert after.synonyms.apply(["levothyrox"]) == ["levothyroxine"]


# --- the synonyms file: errors name the file, the line and the key ----------------------------


def _errors(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path / "synonyms.yaml", text)
    with pytest.raises(ConfigErrors) as exc:
        Synonyms.load(path.parent)
    return [str(e) for e in exc.value.errors]


def test_synonym_listed_under_two_names_is_an_error(tmp_path: Path) -> None:
    errors = _errors(tmp_path, "kind: synonyms\nsynonyms:\n  paracétamol: [doliprane]\n  ibuprofène: [advil, Doliprane]\n")
    assert len(errors) == 1
    assert "synonyms.yaml:4: synonyms.ibuprofène[1]:" in errors[0]
    assert "already a synonym of 'paracétamol'" in errors[0]


def test_synonym_with_a_dose_or_not_a_list_is_an_error(tmp_path: Path) -> None:
    errors = _errors(tmp_path, "kind: synonyms\nsynonyms:\n  levothyroxine: [levothyrox 75]\n  ramipril: triatec\n")
    assert any(":3: synonyms.levothyroxine[0]:" in e and "no dose" in e for e in errors)
    assert any(":4: synonyms.ramipril:" in e and "expected a list" in e for e in errors)


def test_synonyms_file_with_wrong_kind_or_unknown_key(tmp_path: Path) -> None:
    errors = _errors(tmp_path, "kind: synonym\nsynonyms: {}\nextra: 1\n")
    assert any(":1: kind:" in e for e in errors)
    assert any(":3: extra: unknown key 'extra'" in e for e in errors)


def test_shipped_synonyms_map_the_usual_french_brands() -> None:
    for brand, dci in (("levothyrox", "levothyroxine"), ("kardegic", "acide acetylsalicylique"), ("doliprane", "paracetamol")):
        assert " ".join(SYN.apply([brand])) == dci


# --- robustness ------------------------------------------------------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(st.text(max_size=200))
def test_any_text_is_understood_without_error_and_the_key_is_stable(text: str) -> None:
    understood = understand(text, SYN)
    assert understand(understood.key, SYN).key == understood.key
    match(TREATMENTS, text, SYN)
    contains_term(deny_forms(text, SYN), "zolpidem")
