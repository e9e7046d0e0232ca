"""FHIR test data: the unit tests' roster as resources, and small builders."""

from __future__ import annotations

from typing import Any

from bot.care.roster import Roster
from bot.fhir.seed import roster_resources
from bot.yamlutil import YamlDoc

ROSTER_YAML = """\
practitioners:
  - id: dr-martin
    matrix_id: "@dr.martin:clinic.example"
    display_name: "Dr Claire Martin"
    messaging: true
  - id: dr-bernard
    matrix_id: "@dr.bernard:clinic.example"
    display_name: "Dr Paul Bernard"
    messaging: false
patients:
  - id: pat-0001
    matrix_id: "@alice:clinic.example"
    display_name: "Alice Dupont"
    locale: fr
    care:
      - practitioner: dr-bernard
        last_consultation: 2026-01-02
        treatments:
          - name: "Ramipril 5 mg"
            long_term: true
      - practitioner: dr-martin
        last_consultation: 2026-09-14
        treatments:
          - name: "Levothyroxine 75 µg"
            long_term: true
          - name: "Amoxicilline 1 g"
            long_term: false
  - id: pat-0002
    matrix_id: "@bob:clinic.example"
    display_name: "Bob Durand"
    care:
      - practitioner: dr-martin
        last_consultation: null
        treatments:
          - name: "Metformine 500 mg"
            long_term: true
  - id: pat-0003
    matrix_id: "@carol:clinic.example"
    display_name: "Carol Petit"
"""


def roster() -> Roster:
    import yaml

    return Roster.from_doc(YamlDoc("roster.yaml", yaml.safe_load(ROSTER_YAML), {}))


def resources() -> list[dict[str, Any]]:
    return roster_resources(roster())


def normalised(r: Roster) -> Roster:
    """Same people in id order (the server's order is not the file's)."""
    return Roster(
        practitioners=tuple(sorted(r.practitioners, key=lambda p: p.id)),
        patients=tuple(sorted(r.patients, key=lambda p: p.id)),
    )
