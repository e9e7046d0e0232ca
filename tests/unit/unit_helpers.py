"""Helpers for unit tests: a complete, valid carebot setup (roster, config, shipped policies)."""

from __future__ import annotations

import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

ROSTER = """\
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
      - practitioner: dr-martin
        last_consultation: 2026-09-14
        treatments:
          - name: "Levothyroxine 75 µg"
            long_term: true
          - name: "Amoxicilline 1 g"
            long_term: false
      - practitioner: dr-bernard
        last_consultation: 2026-01-02
        treatments:
          - name: "Ramipril 5 mg"
            long_term: true
  - id: pat-0002
    matrix_id: "@bob:clinic.example"
    display_name: "Bob Durand"
    care:
      - practitioner: dr-martin
        last_consultation: null
  - id: pat-0003
    matrix_id: "@carol:clinic.example"
    display_name: "Carol Petit"
"""

CONFIG = """\
homeserver:
  url: "http://127.0.0.1:8008"
bot:
  user_id: "@carebot:clinic.example"
  password: null
  device_name: "carebot"
storage:
  path: "./data"
roster:
  path: "./roster.yaml"
policies:
  path: "./policies"
locale: "fr"
"""


@dataclass(frozen=True)
class Setup:
    dir: Path
    config: Path
    roster: Path
    policies: Path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def make_setup(tmp_path: Path) -> Setup:
    """config.yaml + roster.yaml + a copy of the shipped policies/ in tmp_path."""
    policies = tmp_path / "policies"
    shutil.copytree(REPO / "policies", policies)
    return Setup(tmp_path, write(tmp_path / "config.yaml", CONFIG), write(tmp_path / "roster.yaml", ROSTER), policies)
