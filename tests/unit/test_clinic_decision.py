"""A decision from the practice software goes through the same path as `!accepter`/`!refuser`."""

from __future__ import annotations

from pathlib import Path

from unit_helpers import Setup

from bot.care.renewals import Status
from bot.care.service import CareContext, CareService
from bot.config import load_config
from bot.store import Store

ROOM = "!room:clinic.example"


async def _pending(setup: Setup, tmp_path: Path) -> tuple[CareContext, CareService, Store, object]:
    care = CareContext.load(load_config(setup.config))
    store = await Store.open(tmp_path / "db.sqlite")
    service = CareService(store)
    pair = care.roster.pair("pat-0001", "dr-martin")
    async with store.transaction():
        replies = await service.handle_message(care, pair, "patient", "!renouveler Levothyroxine 75 µg", "$e1", ROOM)
    assert replies[0].renewal[1] == "pending"
    return care, service, store, pair


async def test_a_clinic_refusal_is_told_to_the_patient_like_a_refuser(setup: Setup, tmp_path: Path) -> None:
    care, service, store, pair = await _pending(setup, tmp_path)
    try:
        async with store.transaction():
            [reply] = await service.decide_from_clinic(care, pair, 1, Status.DENIED, "Bilan sanguin d'abord", ROOM)
        assert reply.renewal == ("R1", "denied", "Levothyroxine 75 µg", ())
        assert reply.text == care.texts.get("renewal_denied", "fr", id="R1", medication="Levothyroxine 75 µg", reason="Bilan sanguin d'abord")
        assert reply.for_practitioner == care.texts.get("clinic_decision_for_practitioner", "fr", id="R1", state=care.texts.get("state_denied", "fr"))
        request = await store.request(1)
        assert (request.status, request.note, request.decided_by) == ("denied", "Bilan sanguin d'abord", "dr-martin")
    finally:
        await store.close()


async def test_a_clinic_decision_after_a_matrix_one_changes_nothing(setup: Setup, tmp_path: Path) -> None:
    care, service, store, pair = await _pending(setup, tmp_path)
    try:
        async with store.transaction():
            await service.handle_message(care, pair, "practitioner", "!accepter R1", "$e2", ROOM)
            [reply] = await service.decide_from_clinic(care, pair, 1, Status.DENIED, "Non", ROOM)
        assert reply.renewal[1] == "approved" and reply.for_practitioner is None
        assert (await store.request(1)).status == "approved"
    finally:
        await store.close()
