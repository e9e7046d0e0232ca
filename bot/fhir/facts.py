"""What the roster mapping needs from each FHIR resource, and nothing more.

A resource is validated with its fhir.resources R4B model, then reduced to one of these small
frozen records (a typed model costs about 5.6 KB, a record a few hundred bytes: this is what
the roster source keeps between refreshes, for 10,000 patients and their encounters and
prescriptions).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any


@dataclass(frozen=True, slots=True)
class Person:  # Patient or Practitioner
    id: str
    active: bool
    uris: tuple[str, ...]  # Matrix URIs in telecom (system "other", value "matrix:…")
    name: str | None
    locale: str | None = None


@dataclass(frozen=True, slots=True)
class Role:  # PractitionerRole
    id: str
    active: bool
    practitioner: str | None  # Practitioner id referenced
    uris: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Consultation:  # Encounter
    id: str
    status: str
    patient: str | None
    practitioners: tuple[str, ...]  # Practitioner ids among participant.individual
    day: date | None  # period.end, else period.start
    roles: tuple[str, ...] = ()  # PractitionerRole ids among participant.individual


@dataclass(frozen=True, slots=True)
class Prescription:  # MedicationRequest
    id: str
    status: str
    intent: str
    patient: str | None
    practitioner: str | None  # requester, when a Practitioner
    name: str | None
    long_term: bool
    role: str | None = None  # requester, when a PractitionerRole


def matrix_uris(telecom: Any) -> tuple[str, ...]:
    return tuple(t.value for t in (telecom or []) if t.system == "other" and t.value and t.value.startswith("matrix:"))


def human_name(names: Any) -> str | None:
    for n in names or []:
        if n.text and n.text.strip():
            return str(n.text.strip())
        parts = [*(n.prefix or []), *(n.given or []), *([n.family] if n.family else [])]
        if parts:
            return " ".join(p.strip() for p in parts if p and p.strip())
    return None


def preferred_locale(patient: Any) -> str | None:
    for c in patient.communication or []:
        for coding in c.language.coding or []:
            code = (coding.code or "").lower()[:2]
            if code in ("fr", "en") and (c.preferred or len(patient.communication) == 1):
                return code
    return None


def ref_id(ref: Any, resource_type: str) -> str | None:
    """'Patient/abc' (relative, or absolute ending so, or with /_history/) -> 'abc'."""
    if ref is None or not ref.reference:
        return None
    parts = ref.reference.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == resource_type:
        return str(parts[-1])
    return None


def fact(res: Any) -> Any:
    """The record of a validated R4B resource (records are returned as they are)."""
    kind = getattr(res, "resource_type", None) or getattr(res, "__resource_type__", None)
    if isinstance(res, (Person, Role, Consultation, Prescription)):
        return res
    rid = str(res.id)
    if kind in ("Patient", "Practitioner"):
        locale = preferred_locale(res) if kind == "Patient" else None
        return Person(rid, res.active is not False, matrix_uris(res.telecom), human_name(res.name), locale)
    if kind == "PractitionerRole":
        return Role(rid, res.active is not False, ref_id(res.practitioner, "Practitioner"), matrix_uris(res.telecom))
    if kind == "Encounter":
        when = (res.period.end or res.period.start) if res.period else None
        day = when.date() if hasattr(when, "date") else when
        pracs = tuple(p for p in (ref_id(x.individual, "Practitioner") for x in res.participant or []) if p)
        roles = tuple(r for r in (ref_id(x.individual, "PractitionerRole") for x in res.participant or []) if r)
        return Consultation(rid, str(res.status), ref_id(res.subject, "Patient"), pracs, day, roles)
    if kind == "MedicationRequest":
        concept = res.medicationCodeableConcept
        name = (concept.text or (concept.coding[0].display if concept.coding else None)) if concept else None
        course = res.courseOfTherapyType
        long_term = any(c.code == "continuous" for c in (course.coding or [])) if course else False
        return Prescription(rid, str(res.status), str(res.intent), ref_id(res.subject, "Patient"),
                            ref_id(res.requester, "Practitioner"), name.strip() if name and name.strip() else None, long_term,
                            ref_id(res.requester, "PractitionerRole"))
    raise TypeError(f"no roster record for {kind}")
