from __future__ import annotations

from pathlib import Path

import pytest
from unit_helpers import ROSTER, write

from bot.care.roster import Roster
from bot.yamlutil import ConfigErrors


def load(tmp_path: Path, text: str) -> Roster:
    return Roster.load(write(tmp_path / "roster.yaml", text))


def errors(tmp_path: Path, text: str) -> dict[str, object]:
    with pytest.raises(ConfigErrors) as info:
        load(tmp_path, text)
    return {e.key: e for e in info.value.errors}


def test_contract_roster_loads(tmp_path: Path):
    roster = load(tmp_path, ROSTER)
    assert [p.id for p in roster.practitioners] == ["dr-martin", "dr-bernard"]
    alice = roster.patient("pat-0001")
    assert alice is not None and alice.care[0].treatments[0].name == "Levothyroxine 75 µg"
    assert str(alice.care[0].last_consultation) == "2026-09-14"


def test_verified_pairs_need_care_messaging_and_a_consultation(tmp_path: Path):
    roster = load(tmp_path, ROSTER)
    pairs = [(p.patient.id, p.practitioner.id) for p in roster.verified_pairs()]
    # bob has no consultation, dr-bernard does not offer messaging, carol has no care entry
    assert pairs == [("pat-0001", "dr-martin")]
    unverified = roster.pair("pat-0001", "dr-bernard")
    assert unverified is not None and not unverified.verified
    assert roster.pair("pat-0003", "dr-martin") is None
    assert roster.pair("pat-0002", "dr-martin") is not None and not roster.pair("pat-0002", "dr-martin").verified


def test_lookups_by_matrix_id(tmp_path: Path):
    roster = load(tmp_path, ROSTER)
    assert roster.patient_by_mxid("@alice:clinic.example").id == "pat-0001"
    assert roster.practitioner_by_mxid("@dr.martin:clinic.example").id == "dr-martin"
    assert roster.patient_by_mxid("@dr.martin:clinic.example") is None
    assert [p.patient.id for p in roster.verified_pairs_for_mxid("@dr.martin:clinic.example")] == ["pat-0001"]
    assert roster.verified_pairs_for_mxid("@bob:clinic.example") == []
    assert roster.is_known("@carol:clinic.example") and roster.is_known("@dr.bernard:clinic.example")
    assert not roster.is_known("@mallory:evil.example")


def test_unknown_practitioner_names_file_line_and_dotted_key(tmp_path: Path):
    errs = errors(tmp_path, ROSTER.replace("practitioner: dr-bernard", "practitioner: dr-x"))
    err = errs["patients[0].care[1].practitioner"]
    assert err.file.endswith("roster.yaml")
    assert err.line == 23
    assert str(err).endswith(
        "roster.yaml:23: patients[0].care[1].practitioner: unknown practitioner 'dr-x'. Add it under 'practitioners' or fix the id."
    )


def test_duplicate_ids_and_matrix_ids(tmp_path: Path):
    text = ROSTER.replace("id: pat-0002", "id: pat-0001").replace("@bob:clinic.example", "@alice:clinic.example")
    errs = errors(tmp_path, text)
    assert errs["patients[1].id"].line == 28 and "already used by patients[0]" in errs["patients[1].id"].message
    assert errs["patients[1].matrix_id"].line == 29


def test_id_shared_between_a_practitioner_and_a_patient_is_an_error(tmp_path: Path):
    errs = errors(tmp_path, ROSTER.replace("id: pat-0003", "id: dr-martin"))
    assert "patients[2].id" in errs


def test_bad_ids_and_matrix_ids_say_how_to_fix(tmp_path: Path):
    text = ROSTER.replace("id: pat-0003", "id: Pat_3").replace("@carol:clinic.example", "carol@clinic")
    errs = errors(tmp_path, text)
    assert "lowercase letters, digits and '-'" in errs["patients[2].id"].message
    assert "@alice:clinic.example" in errs["patients[2].matrix_id"].message


def test_uppercase_matrix_id_gets_a_hint(tmp_path: Path):
    errs = errors(tmp_path, ROSTER.replace("@carol:clinic.example", "@Carol:clinic.example"))
    assert "lowercase" in errs["patients[2].matrix_id"].message


def test_unknown_keys_wrong_types_and_all_errors_at_once(tmp_path: Path):
    text = (
        ROSTER.replace("    messaging: false", "    messaging: false\n    mesaging: true")
        .replace("last_consultation: 2026-01-02", "last_consultation: 02/01/2026")
        .replace("locale: fr", "locale: de")
        .replace("practitioner: dr-bernard", "practitioner: dr-x")
    )
    errs = errors(tmp_path, text)
    assert set(errs) == {
        "practitioners[1].mesaging",
        "patients[0].care[1].last_consultation",
        "patients[0].locale",
        "patients[0].care[1].practitioner",
    }
    assert "allowed keys: id, matrix_id, display_name, messaging, locale" in errs["practitioners[1].mesaging"].message
    assert "YYYY-MM-DD" in errs["patients[0].care[1].last_consultation"].message


def test_practitioner_listed_twice_for_one_patient(tmp_path: Path):
    errs = errors(tmp_path, ROSTER.replace("practitioner: dr-bernard", "practitioner: dr-martin"))
    assert "listed twice" in errs["patients[0].care[1].practitioner"].message


def test_empty_or_broken_roster(tmp_path: Path):
    with pytest.raises(ConfigErrors) as info:
        load(tmp_path, "")
    assert "practitioners" in str(info.value)
    with pytest.raises(ConfigErrors) as info:
        load(tmp_path, "patients:\n  - id: [\n")
    assert "invalid YAML" in str(info.value)


def test_roster_objects_are_frozen(tmp_path: Path):
    roster = load(tmp_path, ROSTER)
    with pytest.raises(Exception):
        roster.patients[0].display_name = "x"  # type: ignore[misc]
    pair = roster.verified_pairs()[0]
    with pytest.raises(Exception):
        pair.patient = roster.patients[1]  # type: ignore[misc]


def test_a_bot_serving_some_practitioners_sees_only_their_pairs():
    from bot.care.roster import Roster

    data = {
        "practitioners": [
            {"id": f"dr-{x}", "matrix_id": f"@dr{x}:clinic.example", "display_name": f"Dr {x}", "messaging": True}
            for x in "abc"
        ],
        "patients": [
            {"id": "pat-1", "matrix_id": "@p1:clinic.example", "display_name": "P1",
             "care": [{"practitioner": "dr-a", "last_consultation": "2026-01-02"},
                      {"practitioner": "dr-b", "last_consultation": "2026-01-02"}]},
            {"id": "pat-2", "matrix_id": "@p2:clinic.example", "display_name": "P2",
             "care": [{"practitioner": "dr-c", "last_consultation": "2026-01-02"}]},
        ],
    }
    roster = Roster.model_validate(data)
    mine = roster.restricted_to(["dr-a", "dr-c"])
    assert {(p.patient.id, p.practitioner.id) for p in mine.verified_pairs()} == {("pat-1", "dr-a"), ("pat-2", "dr-c")}
    assert mine.practitioner("dr-b") is None and mine.pair("pat-1", "dr-b") is None
    only_b = roster.restricted_to(["dr-b"])
    assert only_b.patient("pat-2") is None and not only_b.is_known("@p2:clinic.example")
    assert roster.restricted_to(None) is roster
