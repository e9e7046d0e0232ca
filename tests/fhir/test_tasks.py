"""Renewal requests mirrored as Tasks on a real FHIR server (Medplum, in memory), both ways."""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.care.renewals import Status
from bot.care.service import CareContext, CareService, Reply
from bot.config import load_config
from bot.fhir.client import FhirClient
from bot.fhir.decisions import ClinicDecisions
from bot.fhir.devserver import MedplumServer
from bot.fhir.poller import DecisionPoller
from bot.fhir.seed import upload
from bot.fhir.source import FhirRosterSource
from bot.fhir.writer import TaskWriter, queue_for_replies
from bot.store import Store
from tests.fhir import data

REPO = Path(__file__).resolve().parents[2]
ROOM = "!room:clinic.example"


class Env:
    def __init__(self, server: MedplumServer, store: Store, care: CareContext, build: Any) -> None:
        self.server = server
        self.store = store
        self.care = care
        self.build = build
        self.client = FhirClient(server.url, timeout_s=5)
        self.service = CareService(store)
        self.sent: list[tuple[str, list[Reply], str]] = []
        self.conflicts: list[tuple[int, str]] = []
        self.writer = TaskWriter(self.client, store, on_conflict=self._conflict)
        self.pair = care.roster.pair("pat-0001", "dr-martin")

    async def _conflict(self, req: Any, other: str) -> None:
        self.conflicts.append((req.id, other))

    async def enqueue(self, room_id: str, pair: Any, replies: list[Reply], key: str) -> None:
        self.sent.append((room_id, replies, key))

    async def say(self, role: str, body: str, event_id: str) -> list[Reply]:
        async with self.store.transaction():
            replies = await self.service.handle_message(self.care, self.pair, role, body, event_id, ROOM)
            await queue_for_replies(self.store, self.build, self.pair, [(r.renewal[0], r.renewal[1]) for r in replies if r.renewal])
        return replies

    async def tasks(self) -> list[dict[str, Any]]:
        return await self.client.search("Task", {"identifier": "urn:carebot:renewal|"})


@pytest.fixture
async def env(medplum: MedplumServer, tmp_path: Path) -> AsyncIterator[Env]:
    upload(medplum.url, data.resources())
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    (tmp_path / "roster.yaml").write_text(data.ROSTER_YAML)
    (tmp_path / "config.yaml").write_text(
        "homeserver: {url: 'http://127.0.0.1:1'}\nbot: {user_id: '@carebot:clinic.example'}\n"
        "storage: {path: ./data}\nroster: {path: ./roster.yaml}\npolicies: {path: ./policies}\nlocale: en\n"
    )
    care = CareContext.load(load_config(tmp_path / "config.yaml"))
    store = await Store.open(tmp_path / "db.sqlite")
    build = await FhirRosterSource(FhirClient(medplum.url), store).start()
    try:
        yield Env(medplum, store, care, build)
    finally:
        await store.close()


async def test_a_pending_request_becomes_exactly_one_task_with_the_contract_fields(env: Env) -> None:
    replies = await env.say("patient", "!renew Levothyroxine 75 µg", "$e1")
    assert replies[0].renewal[1] == "pending"
    assert await env.writer.drain() == 1
    await env.store.queue_fhir_write(1, "create", {})  # a retry after a crash: same write again
    await env.writer.drain()
    [task] = await env.tasks()
    assert task["identifier"] == [{"system": "urn:carebot:renewal", "value": "R1"}]
    assert (task["status"], task["intent"]) == ("requested", "order")
    assert task["code"]["coding"][0]["system"] == "http://snomed.info/sct"
    assert task["code"]["coding"][0]["code"] == "103742009"
    assert task["for"] == {"reference": "Patient/pat-0001"}
    assert task["requester"] == {"reference": "Patient/pat-0001"}
    assert task["owner"] == {"reference": "Practitioner/dr-martin"}
    assert task["focus"]["reference"].startswith("MedicationRequest/")
    mr = await env.client.read("MedicationRequest", task["focus"]["reference"].split("/")[1])
    assert mr["medicationCodeableConcept"]["text"] == "Levothyroxine 75 µg"
    assert task["authoredOn"]


@pytest.mark.parametrize(
    ("command", "status", "check"),
    [
        ("!approve R1 Prescription ready", "completed", lambda t: t["note"][-1]["text"] == "Prescription ready"),
        ("!deny R1 Please book an appointment", "rejected", lambda t: t["statusReason"]["text"] == "Please book an appointment"),
        ("!cancel R1", "cancelled", lambda t: True),
    ],
)
async def test_decisions_in_matrix_update_the_task_status(env: Env, command: str, status: str, check: Any) -> None:
    await env.say("patient", "!renew Levothyroxine 75 µg", "$e1")
    await env.writer.drain()
    role = "patient" if command.startswith("!cancel") else "practitioner"
    await env.say(role, command, "$e2")
    assert await env.writer.drain() == 1
    [task] = await env.tasks()
    assert task["status"] == status
    assert check(task)


async def test_writes_wait_for_a_server_that_is_down_and_catch_up_in_order_without_duplicates(env: Env) -> None:
    env.server.down()
    await env.say("patient", "!renew Levothyroxine 75 µg", "$e1")
    await env.say("practitioner", "!approve R1", "$e2")
    assert (await env.say("patient", "!renew Levothyroxine 75 µg", "$e3"))[0].renewal[:2] == ("R2", "pending")
    assert await env.writer.drain() == 0
    assert await env.store.fhir_queue_length() == 3
    env.server.up()
    assert await env.writer.drain() == 3
    assert await env.writer.drain() == 0
    tasks = {t["identifier"][0]["value"]: t["status"] for t in await env.tasks()}
    assert tasks == {"R1": "completed", "R2": "requested"}


async def test_a_task_rejected_in_the_clinic_software_reaches_the_patient(env: Env) -> None:
    await env.say("patient", "!renew Levothyroxine 75 µg", "$e1")
    await env.writer.drain()
    [task] = await env.tasks()

    await env.client.update({**task, "status": "rejected", "statusReason": {"text": "Blood test first"}}, None)
    poller = DecisionPoller(env.client, env.store, ClinicDecisions(env.store, env.service, lambda: env.care, env.enqueue))
    assert await poller.poll() == 1
    assert await poller.poll() == 0  # seen once
    [(room, replies, _key)] = env.sent
    assert room == ROOM
    assert replies[0].renewal[:2] == ("R1", "denied")
    assert "Blood test first" in replies[0].text
    assert replies[0].for_practitioner and "practice software" in replies[0].for_practitioner
    assert (await env.store.request(1)).status == Status.DENIED.value


async def test_first_decision_wins_and_the_clinic_software_is_told(env: Env) -> None:
    await env.say("patient", "!renew Levothyroxine 75 µg", "$e1")
    await env.writer.drain()
    [task] = await env.tasks()
    await env.say("practitioner", "!approve R1", "$e2")  # Matrix first; not yet written
    await env.client.update({**task, "status": "rejected", "statusReason": {"text": "No"}}, None)  # the EHR, later
    await env.writer.drain()
    [task] = await env.tasks()
    assert task["status"] == "completed"
    assert "already been answered" in task["note"][-1]["text"]
    assert env.conflicts == [(1, "rejected")]
    assert (await env.store.request(1)).status == "approved"


async def test_a_late_clinic_decision_on_a_decided_request_is_not_applied_and_the_practitioner_is_told(env: Env) -> None:
    await env.say("patient", "!renew Levothyroxine 75 µg", "$e1")
    await env.say("patient", "!cancel R1", "$e2")
    await env.writer.drain()
    [task] = await env.tasks()
    assert task["status"] == "cancelled"
    await env.client.update({**task, "status": "completed"}, None)
    poller = DecisionPoller(env.client, env.store, ClinicDecisions(env.store, env.service, lambda: env.care, env.enqueue))
    assert await poller.poll() == 1
    [(_room, replies, _key)] = env.sent
    assert replies[0].renewal is None and "already" in replies[0].for_practitioner
    assert (await env.store.request(1)).status == "cancelled"
    await env.writer.drain()
    [task] = await env.tasks()
    assert task["status"] == "cancelled" and "already been answered" in task["note"][-1]["text"]
    assert env.conflicts == []  # told once, by the poller's path


async def test_a_write_the_server_refuses_is_kept_and_does_not_block_the_others(env: Env) -> None:
    import urllib.request

    await env.say("patient", "!renew Levothyroxine 75 µg", "$e1")
    await env.writer.drain()
    await env.say("practitioner", "!approve R1", "$e2")
    await env.say("patient", "!renew Levothyroxine 75 µg", "$e3")
    link = await env.store.task_link(1)
    urllib.request.urlopen(urllib.request.Request(f"{env.server.url}/Task/{link.task_id}", method="DELETE"), timeout=10).close()
    assert await env.writer.drain() == 1  # R2's Task is written; R1's update is refused (gone)
    [(request_id, kind, attempts)] = [(w.request_id, w.kind, w.attempts) for w in await env.store.fhir_writes()]
    assert (request_id, kind, attempts) == (1, "decide", 1)
    assert [t["identifier"][0]["value"] for t in await env.tasks()] == ["R2"]
    now = [time.time()]
    env.writer.clock = lambda: now[0]
    await env.writer.drain()  # refused a moment ago: not tried again yet
    assert [w.attempts for w in await env.store.fhir_writes()] == [1]
    now[0] += 61
    await env.writer.drain()  # a minute later: tried again (and refused again)
    assert [w.attempts for w in await env.store.fhir_writes()] == [2]
