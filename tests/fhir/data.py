"""FHIR test data: the unit tests' roster as resources, and small builders."""

from __future__ import annotations

from typing import Any

import yaml

from bot.care.roster import Roster
from bot.fhir.seed import roster_resources
from bot.yamlutil import YamlDoc
from tests.unit.unit_helpers import ROSTER


def _fhir_roster(text: str) -> str:
    """The unit tests' roster, with the one thing FHIR cannot say otherwise: a care link with no
    consultation exists only through a prescription (Bob's)."""
    doc = yaml.safe_load(text)
    bob = next(p for p in doc["patients"] if p["id"] == "pat-0002")
    bob["care"][0]["treatments"] = [{"name": "Metformine 500 mg", "long_term": True}]
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


ROSTER_YAML = _fhir_roster(ROSTER)


def roster() -> Roster:
    return Roster.from_doc(YamlDoc("roster.yaml", yaml.safe_load(ROSTER_YAML), {}))


def resources() -> list[dict[str, Any]]:
    return roster_resources(roster())


def normalised(r: Roster) -> Roster:
    """Same people in id order, and each patient's care by practitioner id (the server's order
    is not the file's)."""
    patients = [p.model_copy(update={"care": tuple(sorted(p.care, key=lambda c: c.practitioner))}) for p in r.patients]
    return Roster(
        practitioners=tuple(sorted(r.practitioners, key=lambda p: p.id)),
        patients=tuple(sorted(patients, key=lambda p: p.id)),
    )
