from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from unit_helpers import REPO, ROSTER, write

from bot.care.policy import (
    RULE_TYPES,
    EligibilityContext,
    Policies,
    explain,
    match_treatment,
    medication_name,
    normalize_medication,
)
from bot.care.roster import Roster
from bot.yamlutil import ConfigErrors

TODAY = date(2026, 10, 1)


@pytest.fixture(scope="module")
def policies() -> Policies:
    return Policies.load(REPO / "policies")


@pytest.fixture
def roster(tmp_path: Path) -> Roster:
    return Roster.load(write(tmp_path / "roster" / "roster.yaml", ROSTER))


def ctx(roster: Roster, medication: str, patient="pat-0001", practitioner="dr-martin", **kw) -> EligibilityContext:
    return EligibilityContext(roster.pair(patient, practitioner), medication, kw.pop("today", TODAY), **kw)


# --- medication normalisation -------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["levothyroxine 75ug", "Lévothyroxine 75 µg", "LEVOTHYROXINE 75µg", "levothyroxine 75 mcg", "Levothyroxine  75 μg", "levothyroxine 75 microgrammes"]
)
def test_dose_spelling_variants_normalize_alike(text: str):
    assert normalize_medication(text) == normalize_medication("Levothyroxine 75 µg") == "levothyroxine 75 ug"


def test_decimal_comma_and_name_part():
    assert normalize_medication("Bisoprolol 2,5mg") == normalize_medication("bisoprolol 2.5 mg") == "bisoprolol 2.5 mg"
    assert medication_name("levothyroxine 75 ug") == "levothyroxine"


@given(st.text())
def test_normalization_is_idempotent(text: str):
    once = normalize_medication(text)
    assert normalize_medication(once) == once


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzéèêàç", min_size=2, max_size=15), st.integers(1, 1000), st.sampled_from(["µg", "mcg", "ug", "μg"]), st.sampled_from(["", " ", "  "]))
def test_normalization_ignores_case_accents_and_dose_spacing(name: str, dose: int, unit: str, space: str):
    assert normalize_medication(f"{name.upper()} {dose}{space}{unit}") == normalize_medication(f"{name} {dose} µg")


# --- matching against the roster -----------------------------------------------------------


def test_name_only_matches_the_single_long_term_treatment(roster: Roster):
    pair = roster.pair("pat-0001", "dr-martin")
    assert match_treatment(pair, "levothyroxine").name == "Levothyroxine 75 µg"
    assert match_treatment(pair, "levothyroxine 100 µg") is None
    assert match_treatment(pair, "Ramipril 5 mg") is None  # another practitioner's treatment
    assert match_treatment(None, "levothyroxine") is None


# --- the shipped policy --------------------------------------------------------------------


def test_shipped_policy_uses_every_rule_type(policies: Policies):
    assert {r.type for r in policies.rules} == set(RULE_TYPES)


def test_long_term_treatment_of_a_verified_pair_is_eligible(policies: Policies, roster: Roster):
    decision = policies.evaluate(ctx(roster, "LEVOTHYROXINE 75mcg"))
    assert decision.eligible, explain(decision)
    assert decision.medication == "Levothyroxine 75 µg"  # as understood: the roster's name
    assert decision.failed_rule_ids == () and decision.reasons("fr") == []


def test_every_failing_rule_is_reported(policies: Policies, roster: Roster):
    decision = policies.evaluate(ctx(roster, "morphine 10 mg", open_count=3, today=date(2028, 1, 1)))
    assert not decision.eligible
    assert decision.medication == "morphine 10 mg"
    assert set(decision.failed_rule_ids) == {"recent-consultation", "long-term-treatment", "no-narcotics-or-hypnotics", "max-open-requests"}
    assert any("365" in r for r in decision.reasons("fr"))
    assert all(r for r in decision.reasons("en"))


def test_not_long_term_treatment_fails(policies: Policies, roster: Roster):
    decision = policies.evaluate(ctx(roster, "amoxicilline 1g"))
    assert decision.failed_rule_ids == ("long-term-treatment",)
    assert decision.medication == "Amoxicilline 1 g"


def test_unverified_pair_fails_verified_pair(policies: Policies, roster: Roster):
    decision = policies.evaluate(ctx(roster, "Ramipril 5 mg", practitioner="dr-bernard"))
    assert "verified-pair" in decision.failed_rule_ids
    decision = policies.evaluate(EligibilityContext(None, "x", TODAY))
    assert {"verified-pair", "recent-consultation", "long-term-treatment", "practitioner-accepts-renewals"} <= set(decision.failed_rule_ids)


def test_duplicate_open_request_fails(policies: Policies, roster: Roster):
    decision = policies.evaluate(ctx(roster, "levothyroxine", open_medications=("levothyroxine 75 ug",), open_count=1))
    assert decision.failed_rule_ids == ("no-duplicate",)


def test_deny_list_matches_whole_words_without_accents(roster: Roster, tmp_path: Path):
    write(
        tmp_path / "p" / "r.yaml",
        """\
        kind: rules
        rules:
          - id: deny
            type: deny_list
            terms: [méthadone, zolpidem]
            reason: {fr: "Non.", en: "No."}
        """,
    )
    policies = Policies.load(tmp_path / "p")
    assert not policies.evaluate(ctx(roster, "METHADONE 40mg")).eligible
    assert not policies.evaluate(ctx(roster, "Zolpidem")).eligible
    assert policies.evaluate(ctx(roster, "zolpidemx")).eligible


def test_practitioner_renewals_can_be_disabled(roster: Roster, tmp_path: Path):
    write(
        tmp_path / "p" / "r.yaml",
        """\
        kind: rules
        rules:
          - id: enabled
            type: practitioner_renewals_enabled
            disabled_for: [dr-martin]
            reason: {fr: "Non.", en: "No."}
        """,
    )
    policies = Policies.load(tmp_path / "p")
    assert policies.evaluate(ctx(roster, "levothyroxine")).failed_rule_ids == ("enabled",)
    assert policies.check_against(roster) == []


def test_explain_reports_rule_by_rule(policies: Policies, roster: Roster):
    text = explain(policies.evaluate(ctx(roster, "zolpidem")), "en")
    assert "NOT ELIGIBLE" in text
    assert "[FAIL] no-narcotics-or-hypnotics" in text and "[ok] verified-pair" in text
    assert "patient reads (en):" in text
    assert len([line for line in text.splitlines() if line.startswith("  [")]) == len(policies.rules)


def test_policy_hash_is_stable_and_changes_with_the_files(tmp_path: Path):
    a = Policies.load(REPO / "policies").policy_hash()
    assert a == Policies.load(REPO / "policies").policy_hash() and len(a) == 64
    import shutil

    shutil.copytree(REPO / "policies", tmp_path / "p")
    (tmp_path / "p" / "renewals.yaml").write_text((tmp_path / "p" / "renewals.yaml").read_text().replace("days: 365", "days: 180"))
    assert Policies.load(tmp_path / "p").policy_hash() != a


@given(st.integers(0, 800), st.integers(0, 5), st.booleans())
def test_evaluation_matches_the_rules_arithmetic(days_ago: int, open_count: int, duplicate: bool):
    roster = Roster.model_validate(
        {
            "practitioners": [{"id": "dr", "matrix_id": "@dr:x.org", "display_name": "Dr", "messaging": True}],
            "patients": [
                {
                    "id": "p",
                    "matrix_id": "@p:x.org",
                    "display_name": "P",
                    "care": [{"practitioner": "dr", "last_consultation": TODAY - timedelta(days=days_ago), "treatments": [{"name": "Levothyroxine 75 µg", "long_term": True}]}],
                }
            ],
        }
    )
    policies = Policies.load(REPO / "policies")
    open_meds = ("levothyroxine 75 ug",) if duplicate else ()
    decision = policies.evaluate(EligibilityContext(roster.pair("p", "dr"), "levothyroxine 75µg", TODAY, open_meds, open_count))
    expected = set()
    if days_ago > 365:
        expected.add("recent-consultation")
    if open_count >= 3:
        expected.add("max-open-requests")
    if duplicate:
        expected.add("no-duplicate")
    assert set(decision.failed_rule_ids) == expected
    assert decision.eligible == (not expected)


# --- loading errors ----------------------------------------------------------------------


def load_errors(directory: Path) -> dict[str, object]:
    with pytest.raises(ConfigErrors) as info:
        Policies.load(directory)
    return {e.key: e for e in info.value.errors}


def test_unknown_rule_type_and_missing_reason_language(tmp_path: Path):
    f = write(
        tmp_path / "r.yaml",
        """\
        kind: rules
        rules:
          - id: a
            type: magic
            reason: {fr: "x", en: "y"}
          - id: b
            type: last_consultation_within
            days: 30
            reason:
              fr: "Trop ancien."
          - id: c
            type: max_open_requests
            max: 2
            colour: red
            reason: {fr: "Au plus {max} et {days}.", en: "At most {max}."}
        """,
    )
    errs = load_errors(tmp_path)
    assert errs["rules[0].type"].line == 4 and "known types: verified_pair" in errs["rules[0].type"].message
    assert errs["rules[1].reason.en"].line == 9 and errs["rules[1].reason.en"].file == str(f)
    assert "unknown key 'colour'" in errs["rules[2].colour"].message
    assert errs["rules[2].reason.fr"].line == 15 and "{days}" in errs["rules[2].reason.fr"].message


def test_duplicate_rule_ids_across_files(tmp_path: Path):
    rule = 'kind: rules\nrules:\n  - id: same\n    type: verified_pair\n    reason: {fr: "a", en: "b"}\n'
    write(tmp_path / "a.yaml", rule)
    write(tmp_path / "b.yaml", rule)
    err = load_errors(tmp_path)["rules[0].id"]
    assert err.file.endswith("b.yaml") and err.line == 3 and "a.yaml" in err.message


def test_files_without_a_known_kind_are_errors(tmp_path: Path):
    write(tmp_path / "x.yaml", "rules: []\n")
    write(tmp_path / "lexicon.yaml", "kind: emergency\nterms: {}\n")
    errs = load_errors(tmp_path)
    assert "kind: rules" in errs["kind"].message
    assert len([e for e in errs.values()]) >= 1


def test_missing_or_empty_policies_directory(tmp_path: Path):
    assert "not found" in str(next(iter(load_errors(tmp_path / "nope").values())))
    write(tmp_path / "emergency.yaml", "kind: emergency\nterms: {fr: [avc], en: [stroke]}\n")
    assert "no eligibility rules" in str(next(iter(load_errors(tmp_path).values())))


def test_disabled_for_unknown_practitioner_is_reported_against_the_roster(roster: Roster, tmp_path: Path):
    write(
        tmp_path / "r.yaml",
        'kind: rules\nrules:\n  - id: e\n    type: practitioner_renewals_enabled\n    disabled_for:\n      - dr-who\n    reason: {fr: "a", en: "b"}\n',
    )
    (err,) = Policies.load(tmp_path).check_against(roster)
    assert (err.key, err.line) == ("rules[0].disabled_for[0]", 6)
