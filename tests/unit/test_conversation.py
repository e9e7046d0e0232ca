"""The patient's side of the conversation: language of answers, typos, refusals that help."""

from __future__ import annotations

import pytest
from test_service import LEVO, Env, env  # noqa: F401  (env is a fixture)

from bot.care.commands import help_text, parse, suggest
from bot.care.service import CareContext

# -- language: the command word's, else the roster's ------------------------------------------


@pytest.mark.parametrize(
    ("body", "locale"),
    [("!help", "en"), ("!HELP", "en"), ("!aide", "fr"), ("!Aide", "fr"), ("!renew x", "en"), ("!renouveler x", "fr"),
     ("!status", "en"), ("!statut", "fr"), ("!cancel R1", "en"), ("!annuler R1", "fr"), ("!approve R1", "en"),
     ("!accepter R1", "fr"), ("!deny R1 non", "en"), ("!refuser R1 non", "fr"), ("!pending", "en"), ("!attente", "fr")],
)  # fmt: skip
def test_command_carries_the_language_of_its_word(body: str, locale: str) -> None:
    assert parse(body).locale == locale  # type: ignore[union-attr]


async def test_english_help_for_a_french_patient_is_english(env: Env) -> None:  # noqa: F811
    assert env.pair.patient.locale == "fr"
    assert (await env.one("patient", "!help")).text == help_text("en", texts=env.care.texts, role="patient")
    assert (await env.one("patient", "!aide")).text == help_text("fr", texts=env.care.texts, role="patient")


async def test_french_command_from_an_english_patient_is_answered_in_french(env: Env) -> None:  # noqa: F811
    roster = env.setup.roster.read_text(encoding="utf-8").replace("    locale: fr\n", "    locale: en\n")
    env.setup.roster.write_text(roster, encoding="utf-8")
    care = CareContext.load(env.config)
    pair = care.roster.pair("pat-0001", "dr-martin")
    r = await env.one("patient", f"!renouveler {LEVO}", care=care, pair=pair)
    assert r.text == env.t("renewal_pending", "fr", id="R1", medication=LEVO)
    # Free text (an emergency) follows the roster: English first; written in French words, the
    # numbers come again in French.
    r = await env.one("patient", "douleur thoracique", care=care, pair=pair)
    assert r.text == env.t("emergency_notice", "en") + "\n\n" + env.t("emergency_notice", "fr")
    # The practitioner's decision is told to the patient in the roster language.
    r = await env.one("practitioner", "!accepter R1", care=care, pair=pair)
    assert r.text == env.t("renewal_approved", "en", id="R1", medication=LEVO)


async def test_english_cancel_is_confirmed_in_english(env: Env) -> None:  # noqa: F811
    await env.send("patient", f"!renouveler {LEVO}")
    r = await env.one("patient", "!cancel R1")
    assert r.text == env.t("renewal_cancelled", "en", id="R1", medication=LEVO)


# -- help and typos ----------------------------------------------------------------------------


@pytest.mark.parametrize("locale", ["fr", "en"])
@pytest.mark.parametrize("role", ["patient", "practitioner"])
def test_help_is_at_most_eight_lines_and_points_to_the_pinned_banner(locale: str, role: str) -> None:
    text = help_text(locale, role=role)  # type: ignore[arg-type]
    lines = text.splitlines()
    assert len(lines) <= 8
    assert ("épinglé" if locale == "fr" else "pinned") in lines[-1]
    assert "15" in lines[-1] and "112" in lines[-1]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("renouvler", ("renew", "fr")), ("renouveller", ("renew", "fr")), ("renw", ("renew", "en")),
     ("stauts", ("status", "en")), ("hepl", ("help", "en")), ("aied", ("help", "fr")), ("anuler", ("cancel", "fr")),
     ("acepter", ("approve", "fr")), ("atente", ("pending", "fr"))],
)  # fmt: skip
def test_near_miss_suggests_the_closest_command_in_its_language(typed: str, expected: tuple[str, str]) -> None:
    assert suggest(typed)[0] == expected


@pytest.mark.parametrize("typed", ["xyz", "ok", "bonjour", "merci", "renouvellementdemain"])
def test_far_words_suggest_nothing(typed: str) -> None:
    assert suggest(typed) == ()


async def test_typo_gets_did_you_mean_in_the_right_language(env: Env) -> None:  # noqa: F811
    r = await env.one("patient", "!renouvler Levothyrox 75")
    assert r.text == env.t("did_you_mean", "fr", command="!renouveler")
    assert "Vouliez-vous dire !renouveler ?" in r.text
    r = await env.one("patient", "!renw Levothyrox 75")
    assert r.text == env.t("did_you_mean", "en", command="!renew")
    # "!statu" is one letter from both "!statut" and "!status": the roster language decides.
    assert (await env.one("patient", "!statu")).text == env.t("did_you_mean", "fr", command="!statut")
    # Nothing close: the plain "unknown command", in the roster language.
    assert (await env.one("patient", "!xyz")).text == env.t("unknown_command", "fr")


# -- refusals that help -------------------------------------------------------------------------


async def test_levothyrox_75_reaches_the_practitioner_as_the_roster_treatment(env: Env) -> None:  # noqa: F811
    for n, body in enumerate(["!renouveler levothyrox 75", "!renouveler Levothyroxine 75"], start=1):
        r = await env.one("patient", body)
        assert r.renewal is not None and r.renewal[1:3] == ("pending", LEVO), r.text
        await env.send("patient", f"!annuler R{n}")


async def test_no_match_lists_the_treatments_that_can_be_renewed_here(env: Env) -> None:  # noqa: F811
    r = await env.one("patient", "!renouveler Ramipril 5 mg")
    assert r.renewal is not None and r.renewal[1] == "ineligible" and r.renewal[3] == ("long-term-treatment",)
    assert r.text.endswith(env.t("renewal_renewable", treatments=LEVO, example=LEVO))
    assert "Amoxicilline" not in r.text  # not long-term: not renewable here
    r = await env.one("patient", "!renew Ramipril 5 mg")
    assert r.text.endswith(env.t("renewal_renewable", "en", treatments=LEVO, example=LEVO))


async def test_patient_without_long_term_treatment_is_told_so(env: Env) -> None:  # noqa: F811
    bob = env.care.roster.pair("pat-0002", "dr-martin")
    care = env.care
    r = await env.one("patient", "!renouveler Levothyroxine 75", pair=bob, care=care)
    assert r.renewal is not None and r.renewal[1] == "ineligible"
    assert env.t("renewal_none_renewable") in r.text


async def test_ambiguous_request_asks_which_listing_the_treatments(env: Env) -> None:  # noqa: F811
    roster = env.setup.roster.read_text(encoding="utf-8").replace(
        '          - name: "Amoxicilline 1 g"\n',
        '          - {name: "Levothyroxine 25 µg", long_term: true}\n          - name: "Amoxicilline 1 g"\n',
    )
    env.setup.roster.write_text(roster, encoding="utf-8")
    care = CareContext.load(env.config)
    pair = care.roster.pair("pat-0001", "dr-martin")
    r = await env.one("patient", "!renouveler Levothyrox", care=care, pair=pair)
    assert r.renewal is not None and r.renewal[1] == "ineligible"
    assert r.renewal[0].startswith("X-") and r.renewal[3] == ("long-term-treatment",)
    expected = env.t("renewal_ambiguous", medication="Levothyrox", treatments=f"• {LEVO}\n• Levothyroxine 25 µg", example=LEVO)
    assert r.text == expected
    assert await env.store.request(1) is None
    r = await env.one("patient", "!renouveler Levothyrox 25", care=care, pair=pair)
    assert r.renewal is not None and r.renewal[:3] == ("R1", "pending", "Levothyroxine 25 µg")


# -- audit lines carry the ids -----------------------------------------------------------------


async def test_audit_decision_lines_carry_request_patient_practitioner_and_status(env: Env) -> None:  # noqa: F811
    await env.send("patient", f"!renouveler {LEVO}")
    await env.send("patient", "!renouveler morphine", event_id="$m")
    await env.send("practitioner", "!accepter R1 ok")
    rows = await env.store.audit_since(0)
    by_action = {(r["action"], r["subject"]): r["details"] for r in rows}
    ids = {"patient": "pat-0001", "practitioner": "dr-martin"}
    assert by_action[("renewal.requested", "R1")] == {"request": "R1", **ids, "status": "pending", "rules": []}
    refused = next(d for (a, s), d in by_action.items() if a == "renewal.requested" and s != "R1")
    assert refused["status"] == "ineligible" and refused["request"].startswith("X-") and refused["patient"] == "pat-0001"
    assert by_action[("renewal.approved", "R1")] == {"request": "R1", **ids, "status": "approved"}
