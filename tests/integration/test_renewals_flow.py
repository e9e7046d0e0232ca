"""The whole renewal flow through a real Synapse with encrypted patient and practitioner clients."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.integration.helpers import make_clinic, replying_to, running_bot

pytestmark = pytest.mark.integration




def renewal(s) -> dict:
    return s.content.get("carebot.renewal", {})


async def test_request_approve_deny_cancel_and_authorization(homeserver, new_user, tmp_path, store_url):
    clinic = make_clinic(tmp_path, homeserver, new_user, database=store_url)
    other_doc = new_user("drB")
    recent = (dt.date.today() - dt.timedelta(days=20)).isoformat()
    clinic.write_roster(
        {
            "practitioners": [
                {"id": "dr-a", "matrix_id": clinic.practitioner[0], "display_name": "Dr Ana Test", "messaging": True},
                {"id": "dr-b", "matrix_id": other_doc[0], "display_name": "Dr Bo Test", "messaging": True},
            ],
            "patients": [
                {
                    "id": "pat-1",
                    "matrix_id": clinic.patient[0],
                    "display_name": "Pat Test",
                    "care": [
                        {
                            "practitioner": "dr-a",
                            "last_consultation": recent,
                            "treatments": [
                                {"name": "Levothyroxine 75 µg", "long_term": True},
                                {"name": "Metformine 500 mg", "long_term": True},
                            ],
                        },
                        {"practitioner": "dr-b", "last_consultation": recent, "treatments": []},
                    ],
                }
            ],
        }
    )
    patient = await clinic.user(clinic.patient, "patient").start()
    doc = await clinic.user(clinic.practitioner, "doc").start()
    doc_b = await clinic.user(other_doc, "docb").start()
    try:
        async with running_bot(clinic.config_path) as bot:
            room_a = (await bot.store.room_for_pair("pat-1", "dr-a")).room_id
            room_b = (await bot.store.room_for_pair("pat-1", "dr-b")).room_id
            await patient.wait_room(lambda r: r == room_a)
            await doc.wait_room(lambda r: r == room_a)
            await doc_b.wait_room(lambda r: r == room_b)
            await patient.wait_for(lambda s: s.room_id == room_a and s.content.get("carebot.disclaimer"))

            # An eligible request: pending, the practitioner is mentioned.
            ask = await patient.send(room_a, "!renouveler levothyroxine 75ug")
            pending = await patient.wait_for(replying_to(ask))
            assert renewal(pending) == {
                "id": "R1", "status": "pending", "medication": "Levothyroxine 75 µg", "rules": []
            }
            assert clinic.practitioner[0] in pending.content["m.mentions"]["user_ids"]
            seen_by_doc = await doc.wait_for(replying_to(ask))
            assert seen_by_doc.decrypted

            # Ineligible at once, with the rules that failed.
            ask = await patient.send(room_a, "!renouveler Morphine 10 mg")
            refused = await patient.wait_for(replying_to(ask))
            assert renewal(refused)["status"] == "ineligible"
            assert renewal(refused)["rules"], refused.content

            # The patient cannot decide; another practitioner cannot decide from their room.
            ask = await patient.send(room_a, "!accepter R1")
            no = await patient.wait_for(replying_to(ask))
            assert "carebot.renewal" not in no.content
            ask = await doc_b.send(room_b, "!accepter R1 ok")
            no = await doc_b.wait_for(replying_to(ask))
            assert "R1" in no.content["body"] and "carebot.renewal" not in no.content

            # Approve with a note: the patient sees it.
            ask = await doc.send(room_a, "!accepter R1 Ordonnance prête à l'accueil")
            approved = await patient.wait_for(replying_to(ask))
            assert renewal(approved)["status"] == "approved"
            assert "Ordonnance prête" in approved.content["body"]
            # Decided requests are final.
            ask = await doc.send(room_a, "!refuser R1 trop tôt")
            final = await doc.wait_for(replying_to(ask))
            assert renewal(final)["status"] == "approved"  # unchanged, and said so

            # Deny needs a reason; with one, the patient sees it.
            ask = await patient.send(room_a, "!renouveler Metformine 500 mg")
            r2 = renewal(await patient.wait_for(replying_to(ask)))
            assert r2["status"] == "pending"
            ask = await doc.send(room_a, f"!refuser {r2['id']}")
            usage = await doc.wait_for(replying_to(ask))
            assert "!refuser" in usage.content["body"]
            ask = await doc.send(room_a, f"!refuser {r2['id']} Prise de sang d'abord, <b>merci</b>")
            denied = await patient.wait_for(replying_to(ask))
            assert renewal(denied)["status"] == "denied"
            assert "Prise de sang" in denied.content["body"]
            assert "<b>" not in denied.content["formatted_body"]  # user text is escaped

            # Cancel a pending request.
            ask = await patient.send(room_a, "!renouveler Levothyroxine 75 µg")
            r3 = renewal(await patient.wait_for(replying_to(ask)))
            ask = await patient.send(room_a, f"!annuler {r3['id']}")
            cancelled = await patient.wait_for(replying_to(ask))
            assert renewal(cancelled)["status"] == "cancelled"

        # Status survives a restart.
        async with running_bot(clinic.config_path):
            ask = await patient.send(room_a, "!statut")
            status = await patient.wait_for(replying_to(ask))
            body = status.content["body"]
            for rid in ("R1", "R2", r2["id"], r3["id"]):
                assert rid in body
            ask = await doc.send(room_a, "!attente")
            empty = await doc.wait_for(replying_to(ask))
            assert "Aucune demande en attente" in empty.content["body"]
    finally:
        for user in (patient, doc, doc_b):
            await user.close()
