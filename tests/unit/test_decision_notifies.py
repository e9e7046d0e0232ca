"""The practitioner's decision is the one answer the patient waits for: it goes out as m.text
(Element's default push rules silence every m.notice) and its first line, which a phone shows
on its lock screen, names no medication, note or reason. Everything else stays m.notice."""

from __future__ import annotations

import pytest
from test_service import LEVO, ROOM, Env, env  # noqa: F401  (env is a fixture)
from unit_helpers import Setup

from bot.care.renewals import Status
from bot.care.service import CareContext
from bot.care.texts import Texts
from bot.matrix.messages import notice
from bot.runtime.conversation import reply_content
from bot.runtime.desk_room import pair_content
from bot.yamlutil import ConfigErrors

FIRST_LINES = {
    ("fr", "!accepter R1 à prendre le matin"): "Votre praticien a répondu à votre demande R1 : acceptée.",
    ("fr", "!refuser R1 bilan sanguin d'abord"): "Votre praticien a répondu à votre demande R1 : non acceptée.",
    ("en", "!accepter R1 take it in the morning"): "Your practitioner answered your request R1: approved.",
    ("en", "!refuser R1 blood test first"): "Your practitioner answered your request R1: not approved.",
}


def _in_locale(env: Env, locale: str) -> tuple[CareContext, object]:  # noqa: F811
    if locale == "en":
        roster = env.setup.roster.read_text(encoding="utf-8").replace("    locale: fr\n", "    locale: en\n")
        env.setup.roster.write_text(roster, encoding="utf-8")
    care = CareContext.load(env.config)
    return care, care.roster.pair("pat-0001", "dr-martin")


@pytest.mark.parametrize(("locale", "command"), list(FIRST_LINES))
async def test_a_decision_is_a_notifying_text_whose_first_line_names_no_medication(env: Env, locale: str, command: str) -> None:  # noqa: F811
    care, pair = _in_locale(env, locale)
    await env.send("patient", f"!renouveler {LEVO}", care=care, pair=pair)
    reply = await env.one("practitioner", command, care=care, pair=pair)
    note = command.split(" ", 2)[2]
    status = "approved" if command.startswith("!accepter") else "denied"
    # A desk (pair_content) or none (reply_content): the same message type and text.
    for content in (reply_content(reply, pair, "$ask"), pair_content(reply, pair, "$ask")):  # type: ignore[arg-type]
        first, rest = content["body"].split("\n", 1)
        assert content["msgtype"] == "m.text"
        assert first == FIRST_LINES[(locale, command)]
        assert "Levo" not in first and note not in first
        assert LEVO in rest and note in rest
        assert content["formatted_body"].startswith(first.replace("'", "&#x27;") + "<br>")
        assert content["carebot.renewal"] == {"id": "R1", "status": status, "medication": LEVO, "rules": []}
        assert content["m.relates_to"] == {"m.in_reply_to": {"event_id": "$ask"}}


async def test_everything_but_a_decision_stays_a_notice(env: Env) -> None:  # noqa: F811
    pending = await env.one("patient", f"!renouveler {LEVO}")
    cancelled = await env.one("patient", "!annuler R1")  # her own doing: nothing to notify
    again = await env.one("practitioner", "!accepter R1")  # already decided
    status = await env.one("patient", "!statut")
    emergency = await env.one("patient", "douleur thoracique")
    for reply in (pending, cancelled, again, status, emergency):
        assert not reply.notify, reply
        assert reply_content(reply, env.pair, None)["msgtype"] == "m.notice"
        assert pair_content(reply, env.pair, None)["msgtype"] == "m.notice"


async def test_a_clinic_software_decision_notifies_the_patient_too(env: Env) -> None:  # noqa: F811
    await env.send("patient", f"!renouveler {LEVO}")
    async with env.store.transaction():
        [reply] = await env.svc.decide_from_clinic(env.care, env.pair, 1, Status.APPROVED, None, ROOM)
    content = reply_content(reply, env.pair, None)  # what the bridge queues (bot/runtime/bridge.py)
    assert content["msgtype"] == "m.text"
    assert content["body"].split("\n", 1)[0] == "Votre praticien a répondu à votre demande R1 : acceptée."
    assert reply.for_practitioner is not None and env.pair.practitioner.matrix_id in content["m.mentions"]["user_ids"]


def test_notice_is_a_text_only_when_asked_to_notify() -> None:
    assert notice("x")["msgtype"] == "m.notice"
    assert notice("x", notify=True)["msgtype"] == "m.text"


def test_a_clinic_text_with_the_medication_on_its_first_line_is_refused(setup: Setup) -> None:
    (setup.policies / "texts.yaml").write_text(
        "kind: texts\ntexts:\n  renewal_denied:\n    en: |-\n      Request {id} ({medication}) not approved.\n      {reason}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigErrors) as caught:
        Texts.load(setup.policies)
    [error] = caught.value.errors
    assert error.key == "texts.renewal_denied.en" and error.line == 4
    assert "{medication} on the first line" in error.message and "lock screen" in error.message
    assert str(setup.policies / "texts.yaml") in str(error)
