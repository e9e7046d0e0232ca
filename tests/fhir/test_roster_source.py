"""The roster read from a real FHIR server (Medplum, in memory) is the roster the YAML gives."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.fhir.client import FhirClient
from bot.fhir.devserver import MedplumServer
from bot.fhir.seed import upload
from bot.fhir.source import FhirRosterSource, NoRoster
from bot.store import Store
from tests.fhir import data


def _source(server: MedplumServer, store: Store | None = None, page_size: int = 500) -> FhirRosterSource:
    return FhirRosterSource(FhirClient(server.url, timeout_s=5), store, page_size=page_size)


async def test_roster_from_fhir_equals_the_yaml_roster(medplum: MedplumServer) -> None:
    upload(medplum.url, data.resources())
    build = await _source(medplum).sync()
    assert data.normalised(build.roster) == data.normalised(data.roster())
    assert build.problems == []
    pairs = {(p.patient.id, p.practitioner.id) for p in build.roster.verified_pairs()}
    assert pairs == {("pat-0001", "dr-martin")}  # dr-bernard has no active PractitionerRole


async def test_pages_are_followed_to_the_end(medplum: MedplumServer) -> None:
    resources = data.resources()
    for i in range(23):
        resources.append({"resourceType": "Patient", "id": f"extra-{i}", "name": [{"text": f"P {i}"}],
                          "telecom": [{"system": "other", "value": f"matrix:u/extra{i}:clinic.example"}]})
    upload(medplum.url, resources)
    build = await _source(medplum, page_size=5).sync()
    assert len(build.roster.patients) == 3 + 23


async def test_unusable_resources_are_skipped_and_named_by_id(medplum: MedplumServer) -> None:
    resources = data.resources() + [
        {"resourceType": "Patient", "id": "no-uri", "name": [{"text": "X"}], "telecom": [{"system": "phone", "value": "0102030405"}]},
        {"resourceType": "Patient", "id": "bad-uri", "name": [{"text": "Y"}], "telecom": [{"system": "other", "value": "matrix:r/room:x"}]},
        {"resourceType": "Encounter", "id": "enc-ghost", "status": "finished", "class": {"code": "AMB"},
         "subject": {"reference": "Patient/ghost"}, "participant": [{"individual": {"reference": "Practitioner/dr-martin"}}],
         "period": {"start": "2026-01-01T10:00:00Z"}},
        {"resourceType": "MedicationRequest", "id": "mr-ghost-doc", "status": "active", "intent": "order",
         "medicationCodeableConcept": {"text": "Aspirine"}, "subject": {"reference": "Patient/pat-0003"},
         "requester": {"reference": "Practitioner/nobody"}},
    ]
    upload(medplum.url, resources)
    build = await _source(medplum).sync()
    skipped = {p.resource: p.reason for p in build.problems}
    assert set(skipped) == {"Patient/no-uri", "Patient/bad-uri", "Encounter/enc-ghost", "MedicationRequest/mr-ghost-doc"}
    assert "no Matrix URI" in skipped["Patient/no-uri"]
    assert "matrix:u/" in skipped["Patient/bad-uri"]
    assert "unknown" in skipped["Encounter/enc-ghost"]
    assert build.counts["Patient.skipped"] == 2
    assert data.normalised(build.roster) == data.normalised(data.roster())  # the rest is intact


async def test_incremental_refresh_sees_a_new_consultation_and_opt_in(medplum: MedplumServer) -> None:
    upload(medplum.url, data.resources())
    source = _source(medplum)
    first = await source.sync()
    assert first.roster.pair("pat-0002", "dr-martin").care.last_consultation is None
    medplum.post({"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"},
                  "subject": {"reference": "Patient/pat-0002"},
                  "participant": [{"individual": {"reference": "Practitioner/dr-martin"}}],
                  "period": {"start": "2026-10-01T10:00:00Z", "end": "2026-10-01T10:15:00Z"}})
    medplum.post({"resourceType": "PractitionerRole", "active": True, "practitioner": {"reference": "Practitioner/dr-bernard"},
                  "telecom": [{"system": "other", "value": "matrix:u/dr.bernard:clinic.example"}]})
    second = await source.sync()
    assert str(second.roster.pair("pat-0002", "dr-martin").care.last_consultation) == "2026-10-01"
    assert second.roster.practitioner("dr-bernard").messaging is True
    assert source._cursor  # the second sync asked only for changes


async def test_unreachable_server_at_start_uses_the_saved_roster(medplum: MedplumServer, tmp_path: Path) -> None:
    upload(medplum.url, data.resources())
    store = await Store.open(tmp_path / "db.sqlite")
    try:
        await _source(medplum, store).start()
        medplum.down()
        build = await _source(medplum, store).start()
        assert data.normalised(build.roster) == data.normalised(data.roster())
        assert build.focus_for("pat-0001", "dr-martin", "levothyroxine 75 ug") is not None
    finally:
        await store.close()


async def test_unreachable_server_and_nothing_saved_is_a_clear_error(medplum: MedplumServer, tmp_path: Path) -> None:
    medplum.down()
    store = await Store.open(tmp_path / "db.sqlite")
    try:
        with pytest.raises(NoRoster, match="fhir.url"):
            await _source(medplum, store).start()
    finally:
        await store.close()


async def test_a_missing_token_file_at_start_is_an_error_naming_the_key(medplum: MedplumServer, tmp_path: Path) -> None:
    from bot.config import load_config
    from bot.runtime.bridge import open_bridge
    from bot.yamlutil import ConfigErrors

    path = tmp_path / "config.yaml"
    path.write_text(
        "homeserver: {url: 'http://127.0.0.1:1'}\nbot: {user_id: '@carebot:clinic.example'}\n"
        "storage: {path: ./data}\nroster: {path: ./roster.yaml}\npolicies: {path: ./policies}\n"
        f"fhir:\n  url: '{medplum.url}'\n  token_file: ./missing-token\n"
    )
    store = await Store.open(tmp_path / "db.sqlite")
    try:
        with pytest.raises(ConfigErrors) as caught:
            await open_bridge(load_config(path), store)
        [error] = caught.value.errors
        assert error.key == "fhir.token_file" and error.line == 8 and "missing-token" in error.message
    finally:
        await store.close()


async def test_an_incremental_refresh_with_no_change_keeps_the_roster_without_rebuilding(medplum: MedplumServer) -> None:
    upload(medplum.url, data.resources())
    source = _source(medplum)
    first = await source.sync()
    assert await source.sync() is first
    medplum.post({"resourceType": "Patient", "id": "x", "name": [{"text": "Nouveau"}],
                  "telecom": [{"system": "other", "value": "matrix:u/nouveau:clinic.example"}]})
    third = await source.sync()
    assert third is not first and len(third.roster.patients) == 4
