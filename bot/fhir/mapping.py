"""FHIR R4 resources -> the roster (the same `Roster` object the YAML loader builds).

Pure: resources in (fhir.resources R4B models, or their records from facts.py), a
`RosterBuild` out. The mapping is the
contract in design.md, "Clinic bridge (HL7 FHIR R4)":

- Matrix ids: `telecom` entries with `system: other` and a Matrix URI `matrix:u/<localpart>:<server>`.
- Roster ids: the FHIR logical ids (they must also be valid roster ids: `[a-z0-9-]+`).
- Opt-in: an active `PractitionerRole` (``active`` not false) of the practitioner carrying
  their Matrix URI in its `telecom`.
- Last consultation: the latest finished `Encounter` of the patient with the practitioner as a
  `participant.individual`; its `period.end`, else `period.start`. (Here and for the
  requester below, a reference to one of the practitioner's PractitionerRoles counts as the
  practitioner: many EHRs write those.)
- Treatments: `MedicationRequest` with `status: active`, `intent` order|plan, `subject` the
  patient, `requester` the practitioner; long-term when `courseOfTherapyType` is coded
  `continuous`; the name is `medicationCodeableConcept.text`, else its first coding's display.

A resource that cannot be used is skipped and reported as a `Problem` (resource reference and
reason: never a name or a medication), never fatal. A reference to a resource that exists but
was itself skipped is not reported twice.
"""

from __future__ import annotations

import urllib.parse
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from bot.care.medication import normalize_medication
from bot.care.roster import Patient, Practitioner, Roster, check_id, check_mxid
from bot.fhir.facts import Person, fact

MATRIX_URI_PREFIX = "matrix:u/"


@dataclass(frozen=True)
class Problem:
    """One resource that was skipped (or one part of it ignored), and why."""

    resource: str  # "Patient/abc"
    reason: str

    def __str__(self) -> str:
        return f"{self.resource}: {self.reason}"


@dataclass
class RosterBuild:
    roster: Roster
    # (patient id, practitioner id, normalised medication) -> MedicationRequest id: Task.focus
    medication_requests: dict[tuple[str, str, str], str]
    problems: list[Problem] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)  # "Patient.used", "Patient.skipped", …

    def focus_for(self, patient_id: str, practitioner_id: str, medication: str) -> str | None:
        return self.medication_requests.get((patient_id, practitioner_id, normalize_medication(medication)))


def mxid_from_uri(uri: str) -> str:
    """'matrix:u/alice:clinic.example' -> '@alice:clinic.example'; ValueError when malformed."""
    if not uri.startswith(MATRIX_URI_PREFIX):
        raise ValueError("is not a Matrix user URI (it should start with 'matrix:u/')")
    rest = uri[len(MATRIX_URI_PREFIX):].split("?", 1)[0].split("#", 1)[0]
    mxid = "@" + urllib.parse.unquote(rest)
    try:
        return check_mxid(mxid)
    except ValueError:
        raise ValueError("is not a valid Matrix user URI; write it like 'matrix:u/alice:clinic.example'") from None


def uri_from_mxid(mxid: str) -> str:
    """'@alice:clinic.example' -> 'matrix:u/alice:clinic.example'."""
    return MATRIX_URI_PREFIX + urllib.parse.quote(mxid[1:], safe=":.=-_/+")


def _person(kind: str, res: Person, problems: list[Problem]) -> tuple[str, str, str] | None:
    """(id, matrix id, display name) of a Patient or Practitioner, or None (problem recorded)."""
    where = f"{kind}/{res.id}"
    try:
        check_id(res.id or "")
    except ValueError:
        problems.append(Problem(where, "its id is not usable as a roster id (only a-z, 0-9 and '-'); give it a lowercase id"))
        return None
    uris = res.uris
    if not uris:
        problems.append(Problem(where, "no Matrix URI in telecom (system 'other', value 'matrix:u/<user>:<server>')"))
        return None
    try:
        mxid = mxid_from_uri(uris[0])
    except ValueError as exc:
        problems.append(Problem(where, f"the Matrix URI in telecom {exc}"))
        return None
    name = res.name
    if not name:
        problems.append(Problem(where, "no name; add a name (text, or given and family)"))
        return None
    return res.id, mxid, name


def _people(
    kind: str, resources: list[Any], problems: list[Problem], counts: Counter[str], taken_ids: Collection[str] = (),
) -> tuple[set[str], dict[str, tuple[str, str, Any]]]:
    """Patients or Practitioners: (every id seen, {id: (matrix id, name, resource)} of those
    used). Skipped and reported: unusable ones, inactive ones, a second resource with the same
    Matrix URI, and an id already in `taken_ids` (a patient with a practitioner's id)."""
    seen: set[str] = set()
    used: dict[str, tuple[str, str, Any]] = {}
    by_mxid: dict[str, str] = {}
    for res in resources:
        seen.add(res.id or "")
        person = _person(kind, res, problems)
        if person is None or not res.active:
            counts[f"{kind}.skipped"] += 1
            continue
        pid, mxid, name = person
        if mxid in by_mxid or pid in taken_ids:
            other = by_mxid.get(mxid) or f"Practitioner/{pid}"
            same = "Matrix URI or id" if kind == "Patient" else "Matrix URI"
            problems.append(Problem(f"{kind}/{pid}", f"same {same} as {other}; keep one resource per person"))
            counts[f"{kind}.skipped"] += 1
            continue
        by_mxid[mxid] = f"{kind}/{pid}"
        used[pid] = (mxid, name, res)
        counts[f"{kind}.used"] += 1
    return seen, used


def build_roster(
    patients: list[Any],
    practitioners: list[Any],
    roles: list[Any],
    encounters: list[Any],
    medication_requests: list[Any],
) -> RosterBuild:
    """The roster from resources: typed R4B models or their records (bot/fhir/facts.py)."""
    patients, practitioners, roles = [fact(r) for r in patients], [fact(r) for r in practitioners], [fact(r) for r in roles]
    encounters, medication_requests = [fact(r) for r in encounters], [fact(r) for r in medication_requests]
    problems: list[Problem] = []
    counts: Counter[str] = Counter()

    # -- practitioners and opt-in --------------------------------------------------------
    seen_prac, found = _people("Practitioner", practitioners, problems, counts)
    pracs = {pid: {"id": pid, "matrix_id": mxid, "display_name": name, "messaging": False} for pid, (mxid, name, _) in found.items()}
    for role in roles:
        where = f"PractitionerRole/{role.id}"
        pid = role.practitioner
        if pid is None or pid not in seen_prac:
            problems.append(Problem(where, "its practitioner reference is missing or unknown"))
            counts["PractitionerRole.skipped"] += 1
            continue
        if pid not in pracs or not role.active:
            counts["PractitionerRole.ignored"] += 1
            continue
        uris = role.uris
        wanted = pracs[pid]["matrix_id"]
        ok = False
        for uri in uris:
            try:
                ok = ok or mxid_from_uri(uri) == wanted
            except ValueError as exc:
                problems.append(Problem(where, f"a Matrix URI in telecom {exc}"))
        if ok:
            pracs[pid]["messaging"] = True
            counts["PractitionerRole.used"] += 1
        else:
            if uris:
                problems.append(Problem(where, f"its Matrix URI is not the one of Practitioner/{pid}; messaging stays off"))
            counts["PractitionerRole.ignored"] += 1

    # -- patients ------------------------------------------------------------------------
    seen_pat, found = _people("Patient", patients, problems, counts, taken_ids=pracs.keys())
    pats = {pid: {"id": pid, "matrix_id": mxid, "display_name": name, "locale": res.locale} for pid, (mxid, name, res) in found.items()}

    role_of = {r.id: r.practitioner for r in roles if r.practitioner}  # PractitionerRole -> Practitioner

    def link(kind: str, res: Any, pat: str | None, prac_ids: tuple[str | None, ...], role_ids: tuple[str | None, ...] = ()) -> list[tuple[str, str]] | None:
        where = f"{kind}/{res.id}"
        if pat is None or pat not in seen_pat:
            problems.append(Problem(where, "its patient reference is missing or unknown"))
            return None
        out = []
        for role in role_ids:  # a PractitionerRole stands for its practitioner
            if role is not None and role not in role_of:
                problems.append(Problem(where, f"unknown practitioner reference PractitionerRole/{role}"))
        for prac in (*prac_ids, *(role_of.get(r) for r in role_ids if r)):
            if prac is None:
                continue
            if prac not in seen_prac:
                problems.append(Problem(where, f"unknown practitioner reference Practitioner/{prac}"))
                continue
            if pat in pats and prac in pracs and pats[pat]["matrix_id"] != pracs[prac]["matrix_id"]:
                out.append((pat, prac))
        return out

    # -- consultations -------------------------------------------------------------------
    care: dict[tuple[str, str], dict[str, Any]] = {}
    for enc in encounters:
        if enc.status != "finished":
            counts["Encounter.ignored"] += 1
            continue
        pairs = link("Encounter", enc, enc.patient, enc.practitioners, enc.roles)
        day = enc.day
        if pairs is None or day is None:
            if day is None and pairs is not None:
                problems.append(Problem(f"Encounter/{enc.id}", "finished but without period.start or period.end"))
            counts["Encounter.skipped"] += 1
            continue
        for key in pairs:
            entry = care.setdefault(key, {"practitioner": key[1], "last_consultation": None, "treatments": []})
            if entry["last_consultation"] is None or day > entry["last_consultation"]:
                entry["last_consultation"] = day
        counts["Encounter.used"] += 1

    # -- treatments ----------------------------------------------------------------------
    focus: dict[tuple[str, str, str], str] = {}
    for mr in medication_requests:
        if mr.status != "active" or mr.intent not in ("order", "plan"):
            counts["MedicationRequest.ignored"] += 1
            continue
        pairs = link("MedicationRequest", mr, mr.patient, (mr.practitioner,), (mr.role,))
        name = mr.name
        if pairs is None or not name:
            if pairs is not None:
                problems.append(Problem(f"MedicationRequest/{mr.id}", "no medication name (medicationCodeableConcept.text or coding display)"))
            counts["MedicationRequest.skipped"] += 1
            continue
        for key in pairs:
            entry = care.setdefault(key, {"practitioner": key[1], "last_consultation": None, "treatments": []})
            entry["treatments"].append({"name": name, "long_term": mr.long_term})
            focus.setdefault((key[0], key[1], normalize_medication(name)), mr.id)
        counts["MedicationRequest.used"] += 1

    for (pat, _prac), entry in sorted(care.items()):
        pats[pat].setdefault("care", []).append(entry)
    roster = _validated(pracs, pats, problems, counts)
    return RosterBuild(roster, focus, problems, counts)


def _validated(pracs: dict[str, dict[str, Any]], pats: dict[str, dict[str, Any]], problems: list[Problem], counts: Counter[str]) -> Roster:
    """Build the Roster with the YAML loader's models; a person the models refuse is skipped."""
    good_pracs = []
    for p in pracs.values():
        try:
            good_pracs.append(Practitioner.model_validate(p))
        except ValidationError as exc:
            problems.append(Problem(f"Practitioner/{p['id']}", _first_error(exc)))
            counts["Practitioner.skipped"] += 1
            counts["Practitioner.used"] -= 1
    known = {p.id for p in good_pracs}
    good_pats = []
    for p in pats.values():
        p = {**p, "care": [c for c in p.get("care", []) if c["practitioner"] in known]}
        try:
            good_pats.append(Patient.model_validate(p))
        except ValidationError as exc:
            problems.append(Problem(f"Patient/{p['id']}", _first_error(exc)))
            counts["Patient.skipped"] += 1
            counts["Patient.used"] -= 1
    return Roster(practitioners=tuple(good_pracs), patients=tuple(good_pats))


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}"


def roster_to_json(build: RosterBuild) -> dict[str, Any]:
    """What the store keeps as the last good roster (roster ids, Matrix ids, names, treatments)."""
    return {
        "roster": build.roster.model_dump(mode="json"),
        "focus": [[*k, v] for k, v in build.medication_requests.items()],
    }


def roster_from_json(data: dict[str, Any]) -> RosterBuild:
    roster = Roster.model_validate(data["roster"])
    focus = {(a, b, c): d for a, b, c, d in data.get("focus", [])}
    return RosterBuild(roster, focus)


__all__ = [
    "Problem",
    "RosterBuild",
    "build_roster",
    "mxid_from_uri",
    "roster_from_json",
    "roster_to_json",
    "uri_from_mxid",
]
