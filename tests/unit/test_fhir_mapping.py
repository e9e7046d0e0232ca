"""Matrix URIs and the FHIR -> roster mapping rules, on typed R4B resources (no server)."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.encounter import Encounter, EncounterParticipant
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole
from fhir.resources.R4B.reference import Reference

from bot.fhir.mapping import build_roster, mxid_from_uri, uri_from_mxid

URI = "matrix:u/{}:clinic.example"


@pytest.mark.parametrize(
    ("uri", "mxid"),
    [
        ("matrix:u/alice:clinic.example", "@alice:clinic.example"),
        ("matrix:u/dr.martin:clinic.example:8448?action=chat", "@dr.martin:clinic.example:8448"),
        ("matrix:u/bob%2Fx:clinic.example", "@bob/x:clinic.example"),
    ],
)
def test_matrix_uris_give_matrix_ids(uri: str, mxid: str) -> None:
    assert mxid_from_uri(uri) == mxid


@pytest.mark.parametrize("uri", ["matrix:r/room:clinic.example", "matrix:u/Alice:clinic.example", "matrix:u/alice", "mailto:a@b"])
def test_malformed_matrix_uris_are_refused(uri: str) -> None:
    with pytest.raises(ValueError, match="matrix:u/"):
        mxid_from_uri(uri)


def test_uri_round_trip() -> None:
    assert mxid_from_uri(uri_from_mxid("@dr.martin:clinic.example")) == "@dr.martin:clinic.example"


def _prac(pid: str, active_role: bool | None = True) -> tuple[Practitioner, list[PractitionerRole]]:
    prac = Practitioner.model_validate({"resourceType": "Practitioner", "id": pid, "name": [{"prefix": ["Dr"], "given": ["Claire"], "family": "Martin"}],
                                        "telecom": [{"system": "other", "value": URI.format(pid)}]})
    roles = [] if active_role is None else [PractitionerRole.model_validate({
        "resourceType": "PractitionerRole", "id": f"r-{pid}", "active": active_role,
        "practitioner": {"reference": f"Practitioner/{pid}"}, "telecom": [{"system": "other", "value": URI.format(pid)}]})]
    return prac, roles


def _patient(pid: str) -> Patient:
    return Patient.model_validate({"resourceType": "Patient", "id": pid, "name": [{"given": ["Alice"], "family": "Dupont"}],
                                   "telecom": [{"system": "other", "value": URI.format(pid)}],
                                   "communication": [{"language": {"coding": [{"code": "en-GB"}]}, "preferred": True}]})


def _enc(eid: str, pat: str, prac: str, status: str, start: str, end: str | None = None) -> Encounter:
    period = {"start": start} | ({"end": end} if end else {})
    return Encounter.model_validate({"resourceType": "Encounter", "id": eid, "status": status, "class": {"code": "AMB"},
                                     "subject": {"reference": f"Patient/{pat}"},
                                     "participant": [{"individual": {"reference": f"Practitioner/{prac}"}}], "period": period})


def _mr(mid: str, course: str | None, status: str = "active", intent: str = "order", text: str | None = "Levothyroxine 75 µg") -> MedicationRequest:
    concept = {"text": text} if text else {"coding": [{"system": "http://snomed.info/sct", "code": "1", "display": "Ramipril 5 mg"}]}
    res = {"resourceType": "MedicationRequest", "id": mid, "status": status, "intent": intent, "medicationCodeableConcept": concept,
           "subject": {"reference": "Patient/p1"}, "requester": {"reference": "Practitioner/d1"}}
    if course:
        res["courseOfTherapyType"] = {"coding": [{"code": course}]}
    return MedicationRequest.model_validate(res)


def test_the_latest_finished_encounter_is_the_last_consultation() -> None:
    prac, roles = _prac("d1")
    encs = [
        _enc("e1", "p1", "d1", "finished", "2026-03-01T09:00:00Z", "2026-03-01T09:30:00Z"),
        _enc("e2", "p1", "d1", "finished", "2026-05-01T09:00:00Z"),
        _enc("e3", "p1", "d1", "planned", "2026-12-01T09:00:00Z"),
    ]
    build = build_roster([_patient("p1")], [prac], roles, encs, [])
    pair = build.roster.pair("p1", "d1")
    assert str(pair.care.last_consultation) == "2026-05-01" and pair.verified
    assert build.roster.patient("p1").display_name == "Alice Dupont"
    assert build.roster.patient("p1").locale == "en"
    assert build.roster.practitioner("d1").display_name == "Dr Claire Martin"


@pytest.mark.parametrize("active_role", [False, None])
def test_no_active_practitioner_role_means_no_messaging(active_role: bool | None) -> None:
    prac, roles = _prac("d1", active_role)
    build = build_roster([_patient("p1")], [prac], roles, [_enc("e1", "p1", "d1", "finished", "2026-03-01T09:00:00Z")], [])
    assert build.roster.practitioner("d1").messaging is False
    assert build.roster.verified_pairs() == []


def test_only_active_order_or_plan_requests_are_treatments_and_continuous_is_long_term() -> None:
    prac, roles = _prac("d1")
    mrs = [
        _mr("m1", "continuous"),
        _mr("m2", "acute", text=None),
        _mr("m3", "continuous", status="stopped"),
        _mr("m4", "continuous", intent="proposal"),
    ]
    build = build_roster([_patient("p1")], [prac], roles, [], mrs)
    treatments = build.roster.pair("p1", "d1").care.treatments
    assert [(t.name, t.long_term) for t in treatments] == [("Levothyroxine 75 µg", True), ("Ramipril 5 mg", False)]
    assert build.focus_for("p1", "d1", "levothyroxine 75 ug") == "m1"


def test_a_practitioner_role_with_another_matrix_uri_does_not_opt_in_and_is_reported() -> None:
    prac, _ = _prac("d1")
    role = PractitionerRole.model_validate({"resourceType": "PractitionerRole", "id": "r1", "active": True,
                                            "practitioner": {"reference": "Practitioner/d1"},
                                            "telecom": [{"system": "other", "value": URI.format("someone")}]})
    build = build_roster([], [prac], [role], [], [])
    assert build.roster.practitioner("d1").messaging is False
    assert [p.resource for p in build.problems] == ["PractitionerRole/r1"]


def test_an_id_that_is_not_a_roster_id_is_skipped_and_reported() -> None:
    pat = _patient("p1").model_copy(update={"id": "Pat.1"})
    build = build_roster([pat], [], [], [], [])
    assert build.roster.patients == ()
    assert "roster id" in build.problems[0].reason and build.problems[0].resource == "Patient/Pat.1"


def test_a_practitioner_role_reference_stands_for_its_practitioner() -> None:
    prac, roles = _prac("d1")
    enc = Encounter.model_validate({"resourceType": "Encounter", "id": "e1", "status": "finished", "class": {"code": "AMB"},
                                    "subject": {"reference": "Patient/p1"},
                                    "participant": [{"individual": {"reference": "PractitionerRole/r-d1"}}],
                                    "period": {"start": "2026-06-01T09:00:00Z"}})
    mr = _mr("m1", "continuous").model_copy(update={"requester": Reference.model_validate({"reference": "PractitionerRole/r-d1"})})
    ghost = _enc("e2", "p1", "d1", "finished", "2026-06-02T09:00:00Z").model_copy(
        update={"participant": [EncounterParticipant.model_validate({"individual": {"reference": "PractitionerRole/nobody"}})]})
    build = build_roster([_patient("p1")], [prac], roles, [enc, ghost], [mr])
    pair = build.roster.pair("p1", "d1")
    assert str(pair.care.last_consultation) == "2026-06-01" and pair.verified
    assert [t.name for t in pair.care.treatments] == ["Levothyroxine 75 µg"]
    assert [(p.resource, p.reason) for p in build.problems] == [("Encounter/e2", "unknown practitioner reference PractitionerRole/nobody")]
