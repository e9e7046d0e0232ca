"""The bridge's loop against a real FHIR server: SIGHUP's full refresh reaches the bot, and an
outage neither stops the loop nor loses the refresh."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.care.roster import Roster
from bot.fhir.bridge import Bridge
from bot.fhir.client import FhirClient
from bot.fhir.devserver import MedplumServer
from bot.fhir.seed import upload
from bot.store import Store
from tests.fhir import data

NEW_PATIENT = {"resourceType": "Patient", "id": "pat-0009", "name": [{"text": "Zoé Nouvelle"}],
               "telecom": [{"system": "other", "value": "matrix:u/zoe:clinic.example"}]}


async def test_refresh_reads_the_server_again_and_hands_the_new_roster_over(medplum: MedplumServer, tmp_path: Path) -> None:
    upload(medplum.url, data.resources())
    store = await Store.open(tmp_path / "db.sqlite")
    bridge = Bridge(FhirClient(medplum.url, timeout_s=5), store, poll_s=3600, drain_delay_s=0)
    await bridge.start()
    rosters: asyncio.Queue[Roster] = asyncio.Queue()

    async def on_roster(roster: Roster) -> None:
        await rosters.put(roster)

    bridge.on_roster = on_roster
    stop = asyncio.Event()
    task = asyncio.create_task(bridge.run(stop))
    try:
        upload(medplum.url, [NEW_PATIENT])
        bridge.refresh()  # what SIGHUP does
        roster = await asyncio.wait_for(rosters.get(), 10)
        assert roster.patient("pat-0009") is not None

        medplum.down()
        upload_later = {**NEW_PATIENT, "id": "pat-0010", "telecom": [{"system": "other", "value": "matrix:u/yan:clinic.example"}]}
        bridge.refresh()  # tried while the server is down: fails, the loop goes on
        medplum.up()
        upload(medplum.url, [upload_later])
        bridge.refresh()
        roster = await asyncio.wait_for(rosters.get(), 15)
        assert roster.patient("pat-0010") is not None and not task.done()
        saved = await store.fhir_state("roster")
        assert saved is not None and any(p["id"] == "pat-0010" for p in saved[0]["roster"]["patients"])
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await store.close()


async def test_requests_decided_by_a_path_without_a_hook_are_mirrored_by_the_sweep(medplum: MedplumServer, tmp_path: Path) -> None:
    upload(medplum.url, data.resources())
    store = await Store.open(tmp_path / "db.sqlite")
    client = FhirClient(medplum.url, timeout_s=5)
    bridge = Bridge(client, store, poll_s=3600, drain_delay_s=0)
    await bridge.start()
    async with store.transaction():  # a request recorded without the bridge's hook
        req = await store.add_request(event_id="$e", room_id="!r", patient_id="pat-0001", practitioner_id="dr-martin",
                                      medication="Levothyroxine 75 µg", medication_key="levothyroxine 75 ug", status="pending")
    stop = asyncio.Event()
    task = asyncio.create_task(bridge.run(stop))
    try:
        async def task_status() -> str | None:
            found = await client.search("Task", {"identifier": f"urn:carebot:renewal|R{req.id}"})
            return found[0]["status"] if found else None

        async def until(status: str) -> None:
            while await task_status() != status:
                bridge.refresh()  # one more loop turn (sweep, drain) now
                await asyncio.sleep(0.1)

        await asyncio.wait_for(until("requested"), 10)
        async with store.transaction():  # e.g. the room closed by a roster change
            assert await store.decide(req.id, "cancelled", None, "admin")
        await asyncio.wait_for(until("cancelled"), 10)
        assert len(await client.search("Task", {"identifier": "urn:carebot:renewal|"})) == 1
        assert focus_of(await client.search("Task", {"identifier": "urn:carebot:renewal|"})) is not None
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await store.close()


def focus_of(tasks: list[dict]) -> str | None:
    return tasks[0].get("focus", {}).get("reference")
