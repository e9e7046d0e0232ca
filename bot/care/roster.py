"""The roster: the clinic's facts about practitioners, patients and who cares for whom.

Format (contract, see design.md)::

    practitioners:
      - {id: dr-martin, matrix_id: "@dr.martin:clinic.example", display_name: "Dr Claire Martin",
         messaging: true, locale: fr}          # locale optional
    patients:
      - id: pat-0001
        matrix_id: "@alice:clinic.example"
        display_name: "Alice Dupont"
        locale: fr                            # optional
        care:
          - practitioner: dr-martin
            last_consultation: 2026-09-14     # optional (null = no consultation on record)
            treatments:
              - {name: "Levothyroxine 75 µg", long_term: true}

Decisions: ids are unique across practitioners and patients (they appear together in room
state); a Matrix id is unique within each list; a patient cannot be their own practitioner.
A patient with no verified pair is not an error: they simply get no room.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from datetime import date
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict

from bot.yamlutil import ConfigError, ConfigErrors, YamlDoc, load_yaml, validate

_ID = re.compile(r"[a-z0-9-]+")
# Matrix user id: @localpart:server (localpart per the spec's grammar, server name with optional port).
_MXID = re.compile(r"@[a-z0-9._=\-/+]+:(?:[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def check_id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError(f"invalid id '{value}'. Use only lowercase letters, digits and '-' (like 'dr-martin' or 'pat-0001').")
    return value


def check_mxid(value: str) -> str:
    if not _MXID.fullmatch(value) or len(value) > 255:
        hint = " Matrix ids are lowercase." if _MXID.fullmatch(value.lower()) else ""
        raise ValueError(f"'{value}' is not a valid Matrix user id.{hint} Write it like '@alice:clinic.example'.")
    return value


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty. Give it a value.")
    return value.strip()


Id = Annotated[str, AfterValidator(check_id)]
MatrixId = Annotated[str, AfterValidator(check_mxid)]
Text = Annotated[str, AfterValidator(_non_empty)]
Locale = Literal["fr", "en"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Treatment(_Model):
    name: Text
    long_term: bool = False


class Care(_Model):
    practitioner: Id
    last_consultation: date | None = None
    treatments: tuple[Treatment, ...] = ()


class Practitioner(_Model):
    id: Id
    matrix_id: MatrixId
    display_name: Text
    messaging: bool = False
    locale: Locale | None = None


class Patient(_Model):
    id: Id
    matrix_id: MatrixId
    display_name: Text
    locale: Locale | None = None
    care: tuple[Care, ...] = ()


@dataclass(frozen=True)
class Pair:
    """A patient and one of their practitioners, with the care entry that links them."""

    patient: Patient
    practitioner: Practitioner
    care: Care

    @property
    def verified(self) -> bool:
        """Care entry + practitioner opted in + at least one consultation on record."""
        return self.practitioner.messaging and self.care.last_consultation is not None

    @property
    def long_term_treatments(self) -> tuple[Treatment, ...]:
        return tuple(t for t in self.care.treatments if t.long_term)


class Roster(_Model):
    practitioners: tuple[Practitioner, ...] = ()
    patients: tuple[Patient, ...] = ()

    @classmethod
    def load(cls, path: str | Path) -> Roster:
        """Load and validate a roster file; ConfigErrors lists every problem found."""
        return cls.from_doc(load_yaml(path))

    @classmethod
    def from_doc(cls, doc: YamlDoc) -> Roster:
        if not isinstance(doc.data, dict):
            raise ConfigErrors([doc.error((), "the roster must have a 'practitioners:' list and a 'patients:' list.")])
        errors: list[ConfigError] = []
        roster = None
        try:
            roster = validate(cls, doc)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
        errors.extend(_cross_check(doc))  # on the raw data, so every error is reported at once
        if errors:
            raise ConfigErrors(sorted(errors, key=lambda e: e.line or 0))
        assert roster is not None
        return roster

    def restricted_to(self, practitioner_ids: "Iterable[str] | None") -> "Roster":
        """The part of the roster one bot serves when several share the practitioners: those
        practitioners, and the patients with a care entry for one of them (other entries
        dropped). None: the whole roster."""
        if practitioner_ids is None:
            return self
        keep = set(practitioner_ids)
        patients = []
        for patient in self.patients:
            care = tuple(c for c in patient.care if c.practitioner in keep)
            if care:
                patients.append(patient.model_copy(update={"care": care}))
        return Roster(practitioners=tuple(p for p in self.practitioners if p.id in keep), patients=tuple(patients))

    # --- queries -----------------------------------------------------------------------
    # Indexed once per roster (it is immutable): with 10,000 pairs a linear scan per event
    # cost 14 ms; a lookup costs microseconds.

    @cached_property
    def _index(self) -> "_Index":
        return _Index.build(self)

    def practitioner(self, practitioner_id: str) -> Practitioner | None:
        return self._index.practitioners.get(practitioner_id)

    def patient(self, patient_id: str) -> Patient | None:
        return self._index.patients.get(patient_id)

    def patient_by_mxid(self, mxid: str) -> Patient | None:
        return self._index.patients_by_mxid.get(mxid)

    def practitioner_by_mxid(self, mxid: str) -> Practitioner | None:
        return self._index.practitioners_by_mxid.get(mxid)

    def pairs(self) -> list[Pair]:
        """Every (patient, practitioner) with a care entry, verified or not."""
        return list(self._index.pairs)

    def verified_pairs(self) -> list[Pair]:
        return [p for p in self._index.pairs if p.verified]

    def pair(self, patient_id: str, practitioner_id: str) -> Pair | None:
        """The pair with a care entry (verified or not: check `.verified`), or None."""
        return self._index.pair_by_ids.get((patient_id, practitioner_id))

    def verified_pairs_for_mxid(self, mxid: str) -> list[Pair]:
        """Verified pairs in which `mxid` is the patient or the practitioner."""
        return [p for p in self._index.pairs_by_mxid.get(mxid, ()) if p.verified]

    def is_known(self, mxid: str) -> bool:
        """Listed in the roster at all (as patient or practitioner), verified pair or not."""
        return self.patient_by_mxid(mxid) is not None or self.practitioner_by_mxid(mxid) is not None


@dataclass(frozen=True)
class _Index:
    """Lookups of a Roster; the first entry wins where the validated roster could repeat one."""

    practitioners: dict[str, Practitioner]
    patients: dict[str, Patient]
    practitioners_by_mxid: dict[str, Practitioner]
    patients_by_mxid: dict[str, Patient]
    pairs: tuple[Pair, ...]
    pair_by_ids: dict[tuple[str, str], Pair]
    pairs_by_mxid: dict[str, list[Pair]]

    @classmethod
    def build(cls, roster: Roster) -> "_Index":
        def first(items, key):  # type: ignore[no-untyped-def]
            out: dict = {}
            for item in items:
                out.setdefault(key(item), item)
            return out

        practitioners = first(roster.practitioners, lambda p: p.id)
        pairs = tuple(Pair(pat, practitioners[c.practitioner], c) for pat in roster.patients for c in pat.care
                      if c.practitioner in practitioners)
        by_mxid: dict[str, list[Pair]] = {}
        for pair in pairs:
            by_mxid.setdefault(pair.patient.matrix_id, []).append(pair)
            if pair.practitioner.matrix_id != pair.patient.matrix_id:
                by_mxid.setdefault(pair.practitioner.matrix_id, []).append(pair)
        return cls(
            practitioners=practitioners,
            patients=first(roster.patients, lambda p: p.id),
            practitioners_by_mxid=first(roster.practitioners, lambda p: p.matrix_id),
            patients_by_mxid=first(roster.patients, lambda p: p.matrix_id),
            pairs=pairs,
            pair_by_ids=first(pairs, lambda p: (p.patient.id, p.practitioner.id)),
            pairs_by_mxid=by_mxid,
        )


def _items(data: object, key: str) -> list[tuple[int, dict]]:
    seq = data.get(key) if isinstance(data, dict) else None
    return [(i, item) for i, item in enumerate(seq) if isinstance(item, dict)] if isinstance(seq, list) else []


def _cross_check(doc: YamlDoc) -> list[ConfigError]:
    """Uniqueness and references, checked on the raw document (tolerates invalid entries)."""
    errors: list[ConfigError] = []
    ids: dict[str, str] = {}
    for section in ("practitioners", "patients"):
        mxids: dict[str, int] = {}
        for i, person in _items(doc.data, section):
            pid, mxid = person.get("id"), person.get("matrix_id")
            if isinstance(pid, str):
                if pid in ids:
                    errors.append(doc.error((section, i, "id"), f"id '{pid}' is already used by {ids[pid]}. Ids must be unique."))
                else:
                    ids[pid] = f"{section}[{i}]"
            if isinstance(mxid, str):
                if mxid in mxids:
                    errors.append(
                        doc.error(
                            (section, i, "matrix_id"),
                            f"matrix id '{mxid}' is already used by {section}[{mxids[mxid]}]. Keep one entry per person.",
                        )
                    )
                else:
                    mxids[mxid] = i
    practitioners = {p.get("id"): p for _, p in _items(doc.data, "practitioners")}
    for i, patient in _items(doc.data, "patients"):
        seen: set[str] = set()
        for j, care in _items(patient, "care"):
            ref = care.get("practitioner")
            if not isinstance(ref, str):
                continue
            key = ("patients", i, "care", j, "practitioner")
            prac = practitioners.get(ref)
            if prac is None:
                errors.append(doc.error(key, f"unknown practitioner '{ref}'. Add it under 'practitioners' or fix the id."))
            elif prac.get("matrix_id") == patient.get("matrix_id"):
                errors.append(doc.error(key, "a patient cannot be their own practitioner. Fix the practitioner id."))
            if ref in seen:
                errors.append(doc.error(key, f"practitioner '{ref}' is listed twice for this patient. Merge the two care entries."))
            seen.add(ref)
    return errors
