"""`make run-fhir` (`carebot demo --fhir`): the demo's people on a throwaway FHIR server.

The demo roster (the same practitioner, patient and treatment as `make run`) is written to an
in-memory Medplum FHIR server as Patient, Practitioner, PractitionerRole, Encounter and
MedicationRequest resources, and the bot's config gets a `fhir:` section pointing at it. The
roster file is then only the source of the demo data: the bot reads FHIR.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.care.roster import Roster
from bot.fhir.devserver import MedplumServer
from bot.fhir.seed import roster_resources, upload


def start_demo_fhir(config_path: Path, roster_path: Path) -> MedplumServer:
    server = MedplumServer(log_path=config_path.parent / "fhir-server.log").start()
    upload(server.url, roster_resources(Roster.load(roster_path)))
    config = yaml.safe_load(config_path.read_text())
    config["fhir"] = {"url": server.url, "poll_s": 5}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return server


def banner_lines(server: MedplumServer) -> list[str]:
    return [
        f"  FHIR server: {server.url}   (Medplum, in memory; the roster is read from it)",
        "  Renewal requests appear as Tasks:  curl -s '" + server.url + "/Task?identifier=urn:carebot:renewal|'",
        "  Decide one there (status completed or rejected) and the patient is told in the room.",
    ]
