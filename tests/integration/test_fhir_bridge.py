"""The clinic bridge end to end: a real Synapse, encrypted clients, the bot, and a real FHIR R4
server (Medplum in memory). The roster file is absent: everything comes from FHIR."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.care.roster import Roster
from bot.fhir.client import FhirClient
from bot.fhir.devserver import MedplumServer
from bot.fhir.seed import roster_resources, upload
from tests.integration.helpers import BotProcess, Clinic, make_clinic, replying_to, roster_for, running_bot

pytestmark = [pytest.mark.integration, pytest.mark.fhir]


def fhir_clinic(tmp_path: Path, homeserver: Any, new_user: Any, server: MedplumServer) -> Clinic:
    clinic = make_clinic(tmp_path, homeserver, new_user)
    upload(server.url, roster_resources(Roster.model_validate(roster_for(clinic.practitioner[0], clinic.patient[0]))))
    (tmp_path / "roster.yaml").unlink()  # the roster comes from the FHIR server only
    config = yaml.safe_load(clinic.config_path.read_text())
    config["fhir"] = {"url": server.url, "poll_s": 1}
    clinic.config_path.write_text(yaml.safe_dump(config))
    return clinic


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
    """Ask the FHIR server until `check` returns something truthy (its state has no push here)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError("the FHIR server never reached the expected state")
        await asyncio.sleep(0.2)


def tasks_of(server: MedplumServer) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
    client = FhirClient(server.url, timeout_s=5)

    async def get() -> list[dict[str, Any]]:
        return await client.search("Task", {"identifier": "urn:carebot:renewal|"})

    return get


def task_in(server: MedplumServer, status: str) -> Callable[[], Awaitable[dict[str, Any] | None]]:
    get = tasks_of(server)

    async def check() -> dict[str, Any] | None:
        return next((t for t in await get() if t["status"] == status), None)

    return check


async def test_roster_from_fhir_makes_the_room_and_requests_and_decisions_become_tasks(homeserver, new_user, tmp_path, medplum):
    clinic = fhir_clinic(tmp_path, homeserver, new_user, medplum)
    patient = await clinic.user(clinic.patient, "patient").start()
    doc = await clinic.user(clinic.practitioner, "doc").start()
    try:
        async with running_bot(clinic.config_path) as bot:
            room = (await bot.store.room_for_pair("pat-1", "dr-a")).room_id  # FHIR logical ids
            await patient.wait_room(lambda r: r == room)
            await doc.wait_room(lambda r: r == room)
            ask = await patient.send(room, "!renouveler Levothyroxine 75 µg")
            pending = await patient.wait_for(replying_to(ask))
            assert pending.content["carebot.renewal"]["status"] == "pending"
            task = await eventually(task_in(medplum, "requested"))
            assert task["identifier"] == [{"system": "urn:carebot:renewal", "value": "R1"}]
            assert task["for"] == task["requester"] == {"reference": "Patient/pat-1"}
            assert task["owner"] == {"reference": "Practitioner/dr-a"}
            assert task["focus"]["reference"].startswith("MedicationRequest/")
            assert task["code"]["coding"][0]["code"] == "103742009"

            decide = await doc.send(room, "!accepter R1 Ordonnance prête")
            await patient.wait_for(lambda s: s.content.get("carebot.renewal", {}).get("status") == "approved")
            done = await eventually(task_in(medplum, "completed"))
            assert done["note"][-1]["text"] == "Ordonnance prête"
            assert decide
            assert len(await tasks_of(medplum)()) == 1
    finally:
        await patient.close()
        await doc.close()


async def test_a_task_rejected_in_the_practice_software_is_told_to_the_patient(homeserver, new_user, tmp_path, medplum):
    clinic = fhir_clinic(tmp_path, homeserver, new_user, medplum)
    patient = await clinic.user(clinic.patient, "patient").start()
    try:
        async with running_bot(clinic.config_path) as bot:
            room = (await bot.store.room_for_pair("pat-1", "dr-a")).room_id
            await patient.wait_room(lambda r: r == room)
            ask = await patient.send(room, "!renouveler Levothyroxine 75 µg")
            await patient.wait_for(replying_to(ask))
            task = await eventually(task_in(medplum, "requested"))
            await FhirClient(medplum.url).update({**task, "status": "rejected", "statusReason": {"text": "Bilan sanguin d'abord"}}, None)
            told = await patient.wait_for(lambda s: s.content.get("carebot.renewal", {}).get("status") == "denied")
            assert told.content["carebot.renewal"]["id"] == "R1"
            assert "Bilan sanguin d'abord" in told.content["body"]
            # A decision from the clinic's software notifies the patient as one typed in Matrix.
            assert told.content["msgtype"] == "m.text"
            assert told.content["body"].split("\n")[0] == "Votre praticien a répondu à votre demande R1 : non acceptée."
            assert (await bot.store.request(1)).status == "denied"
            again = await patient.send(room, "!statut")
            await patient.wait_for(replying_to(again))
            assert len(await tasks_of(medplum)()) == 1
    finally:
        await patient.close()


async def test_fhir_down_for_30_s_loses_nothing_and_doubles_nothing(homeserver, new_user, tmp_path, medplum):
    clinic = fhir_clinic(tmp_path, homeserver, new_user, medplum)
    patient = await clinic.user(clinic.patient, "patient").start()
    doc = await clinic.user(clinic.practitioner, "doc").start()
    try:
        async with running_bot(clinic.config_path) as bot:
            room = (await bot.store.room_for_pair("pat-1", "dr-a")).room_id
            await patient.wait_room(lambda r: r == room)
            await doc.wait_room(lambda r: r == room)
            medplum.down()
            down_at = time.monotonic()
            ask = await patient.send(room, "!renouveler Levothyroxine 75 µg")
            reply = await patient.wait_for(replying_to(ask))  # the Matrix side does not wait for FHIR
            assert reply.content["carebot.renewal"]["status"] == "pending"
            await doc.send(room, "!accepter R1")
            await patient.wait_for(lambda s: s.content.get("carebot.renewal", {}).get("status") == "approved")
            ask2 = await patient.send(room, "!renouveler Levothyroxine 75 µg")
            assert (await patient.wait_for(replying_to(ask2))).content["carebot.renewal"]["id"] == "R2"
            assert await bot.store.fhir_queue_length() == 3
            await asyncio.sleep(max(0.0, 30 - (time.monotonic() - down_at)))  # the outage lasts 30 s
            medplum.up()
            await eventually(task_in(medplum, "completed"), timeout=60)
            await eventually(task_in(medplum, "requested"), timeout=60)
            await eventually(lambda: _queue_empty(bot), timeout=30)
            statuses = sorted((t["identifier"][0]["value"], t["status"]) for t in await tasks_of(medplum)())
            assert statuses == [("R1", "completed"), ("R2", "requested")]
    finally:
        await patient.close()
        await doc.close()


async def _queue_empty(bot: Any) -> bool:
    return await bot.store.fhir_queue_length() == 0


@pytest.mark.parametrize("crash_at", ["after_commit", "fhir_task_created"])
async def test_sigkill_between_commit_and_fhir_write_gives_one_task(homeserver, new_user, tmp_path, medplum, crash_at):
    clinic = fhir_clinic(tmp_path, homeserver, new_user, medplum)
    patient = await clinic.user(clinic.patient, "patient").start()
    try:
        bot = await BotProcess(clinic.config_path).start()
        room = await patient.wait_room()
        await patient.wait_for(lambda s: s.content.get("carebot.disclaimer") is True)
        await bot.stop()

        bot = await BotProcess(clinic.config_path, {"CAREBOT_CRASH_AT": crash_at}).start()
        ask = await patient.send(room, "!renouveler Levothyroxine 75 µg")
        assert await bot.wait_exit() == -9  # killed at the crash point

        bot = await BotProcess(clinic.config_path).start()
        await patient.wait_for(replying_to(ask))
        await eventually(task_in(medplum, "requested"))
        db = sqlite3.connect(tmp_path / "data" / "carebot.db")
        try:
            await eventually(lambda: _sql_zero(db, "SELECT count(*) FROM fhir_writes"))
        finally:
            db.close()
        await bot.stop()
        assert len(await tasks_of(medplum)()) == 1
    finally:
        await patient.close()


async def _sql_zero(db: sqlite3.Connection, sql: str) -> bool:
    return db.execute(sql).fetchone()[0] == 0


async def test_a_patient_added_on_the_fhir_server_gets_a_room_without_a_restart(homeserver, new_user, tmp_path, medplum):
    clinic = fhir_clinic(tmp_path, homeserver, new_user, medplum)
    newcomer = new_user("patient")
    async with running_bot(clinic.config_path) as bot:
        assert await bot.store.room_for_pair("pat-2", "dr-a") is None
        uri = "matrix:u/" + newcomer[0][1:]
        upload(medplum.url, [
            {"resourceType": "Patient", "id": "pat-2", "name": [{"text": "Nouveau Patient"}], "telecom": [{"system": "other", "value": uri}]},
            {"resourceType": "Encounter", "id": "enc-pat-2", "status": "finished", "class": {"code": "AMB"},
             "subject": {"reference": "Patient/pat-2"}, "participant": [{"individual": {"reference": "Practitioner/dr-a"}}],
             "period": {"start": "2026-10-01T09:00:00Z"}},
        ])
        record = await eventually(lambda: bot.store.room_for_pair("pat-2", "dr-a"))
        user = await clinic.user(newcomer, "newcomer").start()
        try:
            await user.wait_room(lambda r: r == record.room_id)
        finally:
            await user.close()


async def test_sighup_reads_the_fhir_roster_again_at_once(homeserver, new_user, tmp_path, medplum):
    import signal

    clinic = fhir_clinic(tmp_path, homeserver, new_user, medplum)
    config = yaml.safe_load(clinic.config_path.read_text())
    config["fhir"]["poll_s"] = 3600  # only SIGHUP can make it read the server again
    clinic.config_path.write_text(yaml.safe_dump(config))
    newcomer = new_user("patient")
    bot = await BotProcess(clinic.config_path).start()
    try:
        upload(medplum.url, [
            {"resourceType": "Patient", "id": "pat-2", "name": [{"text": "Nouveau Patient"}],
             "telecom": [{"system": "other", "value": "matrix:u/" + newcomer[0][1:]}]},
            {"resourceType": "Encounter", "id": "enc-pat-2", "status": "finished", "class": {"code": "AMB"},
             "subject": {"reference": "Patient/pat-2"}, "participant": [{"individual": {"reference": "Practitioner/dr-a"}}],
             "period": {"start": "2026-10-01T09:00:00Z"}},
        ])
        assert bot.proc is not None
        bot.proc.send_signal(signal.SIGHUP)
        user = await clinic.user(newcomer, "newcomer").start()
        try:
            await user.wait_room()  # invited to the new pair's room
        finally:
            await user.close()
    finally:
        await bot.stop()
