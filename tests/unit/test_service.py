"""CareService with a real Store: the renewal lifecycle, roles, listings, emergencies, flood control."""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
from pathlib import Path

import pytest
from unit_helpers import Setup, write

from bot.care.service import CareContext, CareService, Reply, ineligible_id
from bot.config import load_config
from bot.store import Store

ROOM = "!room-alice-martin:clinic.example"
OTHER_ROOM = "!room-bob-martin:clinic.example"
TODAY = dt.date(2026, 11, 25)
LEVO = "Levothyroxine 75 µg"

_events = itertools.count(1)
_CARE_CACHE: dict[tuple[str, ...], CareContext] = {}


def load_care(setup: Setup, config_path: Path | None = None) -> CareContext:
    """CareContext.load, memoised on the files' contents (loading costs ~40 ms; most tests share one)."""
    config_path = config_path or setup.config
    files = [config_path, setup.roster, *sorted(setup.policies.glob("*.yaml"))]
    key = tuple(f.read_text(encoding="utf-8") for f in files)
    if key not in _CARE_CACHE:
        _CARE_CACHE[key] = CareContext.load(load_config(config_path))
    return _CARE_CACHE[key]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Env:
    def __init__(self, setup: Setup, store: Store) -> None:
        self.setup = setup
        self.store = store
        self.config = load_config(setup.config)
        self.care = load_care(setup)
        self.clock = FakeClock()
        self.svc = CareService(store, clock=self.clock)
        pair = self.care.roster.pair("pat-0001", "dr-martin")
        assert pair is not None
        self.pair = pair

    def t(self, key: str, locale: str = "fr", **kw: object) -> str:
        return self.care.texts.get(key, locale, **kw)

    async def send(
        self,
        role: str,
        body: str,
        *,
        room: str = ROOM,
        pair=None,
        today: dt.date | None = TODAY,
        event_id: str | None = None,
        care: CareContext | None = None,
    ) -> list[Reply]:
        async with self.store.transaction():
            return await self.svc.handle_message(
                care or self.care, pair or self.pair, role, body, event_id or f"$ev{next(_events)}", room, today=today
            )

    async def one(self, role: str, body: str, **kw: object) -> Reply:
        replies = await self.send(role, body, **kw)  # type: ignore[arg-type]
        assert len(replies) == 1, replies
        return replies[0]


@pytest.fixture
async def env(setup: Setup, tmp_path: Path):
    store = await Store.open(tmp_path / "data" / "carebot.db")
    try:
        yield Env(setup, store)
    finally:
        await store.close()


def _without_duplicate_rule(env: Env) -> CareContext:
    """The shipped policies minus the no-duplicate rule (so a second identical request is tried)."""
    path = env.setup.policies / "renewals.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index("  # No second request for the same medication")
    end = text.index("  # Practitioners who do not take renewal requests")
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    return CareContext.load(env.config)


# -- renewal requests ------------------------------------------------------------------------


async def test_eligible_request_is_pending_and_mentions_practitioner(env: Env) -> None:
    r = await env.one("patient", f"!renouveler {LEVO}")
    assert r.renewal == ("R1", "pending", LEVO, ())
    assert r.mention_practitioner is True
    assert not r.emergency
    assert "R1" in r.text and LEVO in r.text
    assert env.t("renewal_pending", id="R1", medication=LEVO) in r.text
    assert r.for_practitioner == env.t("renewal_new_for_practitioner", id="R1", medication=LEVO)
    req = await env.store.request(1)
    assert req is not None and req.status == "pending" and req.room_id == ROOM
    assert req.patient_id == "pat-0001" and req.practitioner_id == "dr-martin"


async def test_english_alias_and_loose_spelling_match_the_treatment(env: Env) -> None:
    r = await env.one("patient", "!renew levothyroxine 75ug")
    assert r.renewal is not None and r.renewal[1] == "pending"


async def test_deny_list_medication_is_ineligible_with_rule_id_and_uses_no_request_number(env: Env) -> None:
    r = await env.one("patient", "!renouveler morphine 10 mg", event_id="$morphine")
    assert r.renewal is not None
    rid, status, med, rules = r.renewal
    assert (rid, status) == (ineligible_id("$morphine"), "ineligible")
    assert rid.startswith("X-") and len(rid) == 8
    assert "no-narcotics-or-hypnotics" in rules
    assert r.mention_practitioner is False
    assert "Ce médicament ne peut pas être renouvelé par messagerie" in r.text
    assert await env.store.request(1) is None  # a refused attempt is not stored as a request
    # The next request that reaches the practitioner is R1: refusals leave no gap.
    r = await env.one("patient", f"!renouveler {LEVO}")
    assert r.renewal is not None and r.renewal[:2] == ("R1", "pending")


async def test_short_term_treatment_is_ineligible(env: Env) -> None:
    r = await env.one("patient", "!renouveler Amoxicilline 1 g")
    assert r.renewal is not None and r.renewal[1] == "ineligible"
    assert r.renewal[3] == ("long-term-treatment",)
    assert not r.mention_practitioner


async def test_old_consultation_is_ineligible(env: Env) -> None:
    r = await env.one("patient", f"!renouveler {LEVO}", today=TODAY + dt.timedelta(days=3000))
    assert r.renewal is not None and r.renewal[1] == "ineligible"
    assert r.renewal[3] == ("recent-consultation",)
    assert "365" in r.text


async def test_duplicate_points_to_the_pending_request_and_makes_no_new_one(env: Env) -> None:
    await env.one("patient", f"!renouveler {LEVO}")
    r = await env.one("patient", "!renouveler levothyrox 75 mcg")
    assert r.renewal == ("R1", "pending", LEVO, ())
    assert r.text == env.t("renewal_already_pending", id="R1", medication=LEVO)
    assert not r.mention_practitioner  # the practitioner is not asked twice
    assert await env.store.request(2) is None
    r = await env.one("patient", "!renew Levothyroxine")
    assert r.renewal == ("R1", "pending", LEVO, ())
    assert r.text == env.t("renewal_already_pending", "en", id="R1", medication=LEVO)


async def test_max_open_requests(tmp_path: Path, env: Env) -> None:
    roster = env.setup.roster.read_text(encoding="utf-8").replace(
        """          - name: "Amoxicilline 1 g"
            long_term: false""",
        """          - name: "Amoxicilline 1 g"
            long_term: false
          - {name: "Metformine 500 mg", long_term: true}
          - {name: "Atorvastatine 20 mg", long_term: true}
          - {name: "Ramipril 5 mg", long_term: true}""",
    )
    env.setup.roster.write_text(roster, encoding="utf-8")
    care = CareContext.load(env.config)
    pair = care.roster.pair("pat-0001", "dr-martin")
    for med in (LEVO, "Metformine 500 mg", "Atorvastatine 20 mg"):
        r = await env.one("patient", f"!renew {med}", care=care, pair=pair)
        assert r.renewal is not None and r.renewal[1] == "pending", r.text
    r = await env.one("patient", "!renew Ramipril 5 mg", care=care, pair=pair)
    assert r.renewal is not None and r.renewal[1] == "ineligible"
    assert r.renewal[3] == ("max-open-requests",)
    assert "3" in r.text
    # Once one is decided, there is room again.
    await env.one("practitioner", "!approve R1", care=care, pair=pair)
    r = await env.one("patient", "!renew Ramipril 5 mg", care=care, pair=pair)
    assert r.renewal is not None and r.renewal[1] == "pending"


async def test_max_open_requests_counts_only_this_practitioner(env: Env) -> None:
    """Open requests with another practitioner do not count (policy: per patient and practitioner)."""
    roster = env.setup.roster.read_text(encoding="utf-8").replace("messaging: false", "messaging: true")
    roster = roster.replace(
        """          - name: "Ramipril 5 mg"
            long_term: true""",
        """          - {name: "Ramipril 5 mg", long_term: true}
          - {name: "Metformine 500 mg", long_term: true}
          - {name: "Atorvastatine 20 mg", long_term: true}""",
    )
    env.setup.roster.write_text(roster, encoding="utf-8")
    care = CareContext.load(env.config)
    bernard = care.roster.pair("pat-0001", "dr-bernard")
    martin = care.roster.pair("pat-0001", "dr-martin")
    for med in ("Ramipril 5 mg", "Metformine 500 mg", "Atorvastatine 20 mg"):
        r = await env.one("patient", f"!renew {med}", care=care, pair=bernard, room=OTHER_ROOM)
        assert r.renewal is not None and r.renewal[1] == "pending", r.text
    r = await env.one("patient", f"!renew {LEVO}", care=care, pair=martin)
    assert r.renewal is not None and r.renewal[1] == "pending", r.text


# -- decisions -------------------------------------------------------------------------------


async def test_approve_with_note(env: Env) -> None:
    await env.send("patient", f"!renouveler {LEVO}")
    r = await env.one("practitioner", "!accepter R1 à prendre le matin")
    assert r.renewal == ("R1", "approved", LEVO, ())
    assert env.t("renewal_approved_note", id="R1", medication=LEVO, note="à prendre le matin") == r.text
    req = await env.store.request(1)
    assert req is not None and req.status == "approved" and req.note == "à prendre le matin"
    assert req.decided_by == "dr-martin"


async def test_approve_without_note(env: Env) -> None:
    await env.send("patient", f"!renouveler {LEVO}")
    r = await env.one("practitioner", "!approve r1")
    assert r.text == env.t("renewal_approved", id="R1", medication=LEVO)
    assert r.renewal is not None and r.renewal[1] == "approved"


async def test_deny_requires_a_reason(env: Env) -> None:
    await env.send("patient", f"!renouveler {LEVO}")
    r = await env.one("practitioner", "!refuser R1")
    assert r.renewal is None
    assert r.text == env.t("usage", usage="!refuser <id> <motif>")
    assert (await env.store.request(1)).status == "pending"  # type: ignore[union-attr]
    r = await env.one("practitioner", "!refuser R1 bilan sanguin nécessaire")
    assert r.renewal == ("R1", "denied", LEVO, ())
    assert "bilan sanguin nécessaire" in r.text
    assert r.text == env.t("renewal_denied", id="R1", medication=LEVO, reason="bilan sanguin nécessaire")


async def test_cancel_by_patient_only_pending(env: Env) -> None:
    await env.send("patient", f"!renouveler {LEVO}")
    r = await env.one("practitioner", "!annuler R1")
    assert r.text == env.t("not_allowed_for_role", command="!annuler")
    assert (await env.store.request(1)).status == "pending"  # type: ignore[union-attr]
    r = await env.one("patient", "!annuler R1")
    assert r.renewal == ("R1", "cancelled", LEVO, ())
    assert r.text == env.t("renewal_cancelled", id="R1", medication=LEVO)
    # Cancelling again is refused as already decided.
    r = await env.one("patient", "!annuler R1")
    assert r.text == env.t("already_decided", id="R1", state=env.t("state_cancelled"))
    assert r.renewal is not None and r.renewal[:2] == ("R1", "cancelled")  # its state, unchanged
    # A refused attempt has no R-number: there is nothing to cancel.
    await env.send("patient", "!renouveler morphine")
    r = await env.one("patient", "!annuler R2")
    assert r.text == env.t("unknown_request", id="R2")
    assert await env.store.request(2) is None


async def test_decided_requests_are_final(env: Env) -> None:
    await env.send("patient", f"!renouveler {LEVO}")
    await env.send("practitioner", "!approve R1")
    for body, loc in (("!deny R1 non", "en"), ("!approve R1 encore", "en"), ("!refuser R1 finalement non", "fr")):
        r = await env.one("practitioner", body)
        assert r.text == env.t("already_decided", loc, id="R1", state=env.t("state_approved", loc))
        assert r.renewal == ("R1", "approved", LEVO, ())  # the request's state, unchanged
    r = await env.one("patient", "!annuler R1")
    assert r.text == env.t("already_decided", id="R1", state=env.t("state_approved"))
    req = await env.store.request(1)
    assert req is not None and req.status == "approved"


async def test_other_rooms_request_is_unknown(env: Env) -> None:
    await env.send("patient", f"!renouveler {LEVO}")
    bob = env.care.roster.pair("pat-0002", "dr-martin")
    for role, body in (("practitioner", "!accepter R1"), ("practitioner", "!refuser R1 non"), ("patient", "!annuler R1")):
        r = await env.one(role, body, room=OTHER_ROOM, pair=bob)
        assert r.text == env.t("unknown_request", id="R1")
        assert LEVO not in r.text and r.renewal is None
    # A number that does not exist at all reads exactly the same.
    r = await env.one("practitioner", "!accepter R42")
    assert r.text == env.t("unknown_request", id="R42")
    assert (await env.store.request(1)).status == "pending"  # type: ignore[union-attr]


async def test_patient_cannot_approve_or_deny(env: Env) -> None:
    await env.send("patient", f"!renouveler {LEVO}")
    r = await env.one("patient", "!accepter R1")
    assert r.text == env.t("not_allowed_for_role", command="!accepter")
    r = await env.one("patient", "!deny R1 non")
    assert r.text == env.t("not_allowed_for_role", "en", command="!deny")
    assert (await env.store.request(1)).status == "pending"  # type: ignore[union-attr]


async def test_practitioner_cannot_renew(env: Env) -> None:
    r = await env.one("practitioner", f"!renouveler {LEVO}")
    assert r.text == env.t("not_allowed_for_role", command="!renouveler")
    r = await env.one("practitioner", f"!renew {LEVO}")
    assert r.text == env.t("not_allowed_for_role", "en", command="!renew")
    assert await env.store.request(1) is None


# -- listings --------------------------------------------------------------------------------


async def test_status_and_pending_listings(env: Env) -> None:
    assert (await env.one("patient", "!statut")).text == env.t("status_empty")
    assert (await env.one("practitioner", "!attente")).text == env.t("pending_empty")
    await env.send("patient", f"!renouveler {LEVO}")
    await env.send("patient", "!renouveler morphine")  # refused: not a request, not listed
    await env.send("patient", "!renouveler levothyroxine 75")  # a duplicate: points to R1
    status = (await env.one("patient", "!statut")).text.splitlines()
    assert status == [
        env.t("status_header"),
        env.t("status_item", id="R1", medication=LEVO, state=env.t("state_pending")),
    ]
    pending = (await env.one("practitioner", "!attente")).text.splitlines()
    assert pending == [env.t("pending_header"), env.t("pending_item", id="R1", medication=LEVO)]
    # Another room lists nothing of this one.
    bob = env.care.roster.pair("pat-0002", "dr-martin")
    assert (await env.one("patient", "!statut", room=OTHER_ROOM, pair=bob)).text == env.t("status_empty")
    assert (await env.one("practitioner", "!attente", room=OTHER_ROOM, pair=bob)).text == env.t("pending_empty")
    # Listings are role-bound.
    assert (await env.one("practitioner", "!statut")).text == env.t("not_allowed_for_role", command="!statut")
    assert (await env.one("patient", "!attente")).text == env.t("not_allowed_for_role", command="!attente")


async def test_help_fits_a_phone_screen_points_to_the_banner_and_each_role_sees_its_own_commands(env: Env) -> None:
    patient = (await env.one("patient", "!aide")).text
    doc = (await env.one("practitioner", "!aide")).text
    for text in (patient, doc):
        assert len(text.splitlines()) <= 8
        assert env.t("disclaimer") not in text and "3114" not in text  # the banner is not repeated
        assert text.endswith(env.t("help_banner"))  # it is pointed to, with 15 and 112
        assert not text.rstrip().endswith("!aide pour voir les commandes.")
    assert "!renouveler" in patient and "!accepter" not in patient
    assert "!accepter" in doc and "!refuser" in doc and "!renouveler" not in doc


async def test_plain_message_gets_no_reply(env: Env) -> None:
    assert await env.send("patient", "Bonjour docteur, merci pour la dernière fois.") == []
    assert await env.send("practitioner", "Bonjour, à bientôt.") == []


# -- redelivery ------------------------------------------------------------------------------


async def test_redelivered_event_cannot_create_a_second_request(env: Env) -> None:
    """The app skips events for which store.is_processed() is true, marking them processed in
    the same transaction as handle_message; the UNIQUE(event_id) on requests is the backstop:
    even if the check were bypassed, the second insert fails and its transaction rolls back."""
    await env.send("patient", f"!renouveler {LEVO}", event_id="$same")
    async with env.store.transaction():
        await env.store.mark_processed("$same", ROOM)
    assert await env.store.is_processed("$same")
    with pytest.raises(sqlite3.IntegrityError):
        await env.send("patient", "!renouveler Levothyroxine 75 µg", event_id="$same", care=_without_duplicate_rule(env))
    with pytest.raises(sqlite3.IntegrityError):
        async with env.store.transaction():
            await env.store.add_request(
                event_id="$same", room_id=ROOM, patient_id="pat-0001", practitioner_id="dr-martin",
                medication=LEVO, medication_key="x", status="pending",
            )
    assert [r.id for r in await env.store.requests_in_room(ROOM)] == [1]


# -- emergencies -----------------------------------------------------------------------------


async def test_emergency_message_gets_emergency_notice(env: Env) -> None:
    r = await env.one("patient", "j'ai une douleur thoracique depuis ce matin")
    assert r.emergency is True and r.mention_practitioner is True
    assert r.text == env.t("emergency_notice")
    assert "15" in r.text and "112" in r.text


async def test_emergency_inside_a_command_comes_first_and_is_not_just_queued(env: Env) -> None:
    replies = await env.send("patient", f"!renouveler {LEVO} j'ai une douleur thoracique")
    assert replies[0].emergency is True and replies[0].mention_practitioner is True
    assert len(replies) == 2  # and the command still gets its own answer


async def test_practitioner_message_does_not_trigger_emergency(env: Env) -> None:
    assert await env.send("practitioner", "pas de douleur thoracique ?") == []


async def test_english_emergency_with_english_locale(env: Env) -> None:
    roster = env.setup.roster.read_text(encoding="utf-8").replace("    locale: fr\n", "    locale: en\n")
    env.setup.roster.write_text(roster, encoding="utf-8")
    care = CareContext.load(env.config)
    pair = care.roster.pair("pat-0001", "dr-martin")
    r = await env.one("patient", "I have chest pain", care=care, pair=pair)
    assert r.emergency and r.text == env.t("emergency_notice", "en")


async def test_an_emergency_written_in_the_other_language_gets_the_numbers_in_both(env: Env) -> None:
    # Alice's roster language is French; she writes in English: she must not have to read the
    # emergency numbers in a language she may not read. Roster language first.
    r = await env.one("patient", "I have chest pain since this morning")
    assert r.emergency and r.text == env.t("emergency_notice", "fr") + "\n\n" + env.t("emergency_notice", "en")
    assert (await env.one("patient", "I have suicidal thoughts")).text == r.text
    # A word both lists share ("suicide") says nothing of the language: the roster's only.
    assert (await env.one("patient", "suicide")).text == env.t("emergency_notice", "fr")
    assert (await env.one("patient", "une douleur thoracique")).text == env.t("emergency_notice", "fr")


# -- locales ---------------------------------------------------------------------------------


async def test_patient_locale_en_gives_english_texts(env: Env) -> None:
    roster = env.setup.roster.read_text(encoding="utf-8").replace("    locale: fr\n", "    locale: en\n")
    env.setup.roster.write_text(roster, encoding="utf-8")
    care = CareContext.load(env.config)
    pair = care.roster.pair("pat-0001", "dr-martin")
    r = await env.one("patient", f"!renew {LEVO}", care=care, pair=pair)
    assert r.text.startswith(env.t("renewal_pending", "en", id="R1", medication=LEVO))
    # The practitioner keeps the clinic's locale (fr) for their part.
    assert r.for_practitioner == env.t("renewal_new_for_practitioner", "fr", id="R1", medication=LEVO)
    r = await env.one("patient", "!renew morphine", care=care, pair=pair)
    assert "This medication cannot be renewed through messaging" in r.text
    # The practitioner's own replies are in French; the decision is told to the patient in English.
    r = await env.one("practitioner", "!approve R1", care=care, pair=pair)
    assert r.text == env.t("renewal_approved", "en", id="R1", medication=LEVO)
    r = await env.one("practitioner", "!foo", care=care, pair=pair)
    assert r.text == env.t("unknown_command", "fr")


async def test_config_locale_en(env: Env) -> None:
    text = env.setup.config.read_text(encoding="utf-8").replace('locale: "fr"', 'locale: "en"')
    env.setup.config.write_text(text, encoding="utf-8")
    care = CareContext.load(load_config(env.setup.config))
    bob = care.roster.pair("pat-0002", "dr-martin")  # no locale in the roster
    assert (await env.one("patient", "!status", care=care, pair=bob, room=OTHER_ROOM)).text == env.t("status_empty", "en")
    assert (await env.one("practitioner", "!pending", care=care, pair=bob, room=OTHER_ROOM)).text == env.t("pending_empty", "en")
    # The command word's language wins over the config: "!statut" is answered in French.
    assert (await env.one("patient", "!statut", care=care, pair=bob, room=OTHER_ROOM)).text == env.t("status_empty", "fr")
    # Notices follow the roster: Bob has no locale (config: en), Alice's is fr. Bob wrote in
    # French: the numbers come in English (his roster language), then in French.
    both = env.t("emergency_notice", "en") + "\n\n" + env.t("emergency_notice", "fr")
    assert (await env.one("patient", "douleur thoracique", care=care, pair=bob, room=OTHER_ROOM)).text == both
    assert (await env.one("patient", "douleur thoracique", care=care)).text == env.t("emergency_notice", "fr")


# -- flood control ---------------------------------------------------------------------------


async def test_flood_limit_one_notice_then_silence_emergencies_still_answered(env: Env) -> None:
    limit = env.care.flood_per_minute
    assert limit == 10
    for _ in range(limit):
        r = await env.one("patient", "!statut")
        assert r.text == env.t("status_empty")
        env.clock.now += 1
    r = await env.one("patient", "!statut")
    assert r.text == env.t("flood_limited")
    for _ in range(5):
        assert await env.send("patient", "!statut") == []
    # Plain messages never count and are never answered.
    assert await env.send("patient", "bonjour") == []
    # An emergency is answered even while commands are paused, with or without a command.
    r = await env.one("patient", "!statut douleur thoracique")
    assert r.emergency and r.text == env.t("emergency_notice")
    r = await env.one("patient", "douleur thoracique")
    assert r.emergency
    # The practitioner has a separate budget.
    assert (await env.one("practitioner", "!attente")).text == env.t("pending_empty")
    # Once the window has passed, commands work again.
    env.clock.now += 120
    assert (await env.one("patient", "!statut")).text == env.t("status_empty")


async def test_flood_limit_per_config(env: Env) -> None:
    text = env.setup.config.read_text(encoding="utf-8") + "limits:\n  flood_messages_per_minute: 2\n"
    write(env.setup.config, text)
    care = CareContext.load(load_config(env.setup.config))
    assert care.flood_per_minute == 2
    texts = [(await env.one("patient", "!statut", care=care)).text for _ in range(3)]
    assert texts[:2] == [env.t("status_empty")] * 2 and texts[2] == env.t("flood_limited")
    assert await env.send("patient", "!statut", care=care) == []


async def test_help_typos_and_unknown_commands_do_not_count_toward_the_flood_limit(env: Env) -> None:
    limit = env.care.flood_per_minute
    for body in ["!aide", "!help", "!renouvler x", "!statu", "!xyz", "!foo bar"] * 5:
        assert len(await env.send("patient", body)) == 1
    # Thirty free commands later, the whole budget is still there.
    for _ in range(limit):
        assert (await env.one("patient", "!statut")).text == env.t("status_empty")
    assert (await env.one("patient", "!statut")).text == env.t("flood_limited")
    # And help is still answered past the limit.
    assert (await env.one("patient", "!aide")).text.startswith(env.t("help_intro"))


async def test_renewal_past_the_limit_is_never_dropped_in_silence(env: Env) -> None:
    limit = env.care.flood_per_minute
    for _ in range(limit):
        await env.one("patient", "!statut")
        env.clock.now += 1
    assert (await env.one("patient", "!statut")).text == env.t("flood_limited")
    assert await env.send("patient", "!statut") == []  # one notice a minute for other commands
    # Every renewal request gets an answer saying plainly it was not recorded.
    for _ in range(3):
        r = await env.one("patient", f"!renouveler {LEVO}")
        assert r.text == env.t("flood_renewal")
        assert "dans une minute" in r.text and "PAS été enregistrée" in r.text
        assert r.renewal is None and not r.mention_practitioner
    assert await env.store.request(1) is None
    # "Send it again in a minute" is true: a minute after the notice the request goes through.
    env.clock.now += 60
    r = await env.one("patient", f"!renouveler {LEVO}")
    assert r.renewal == ("R1", "pending", LEVO, ())


async def test_flood_notice_is_in_the_roster_language_whatever_the_command_word(env: Env) -> None:
    for _ in range(env.care.flood_per_minute):
        await env.one("patient", "!status")
    assert (await env.one("patient", "!status")).text == env.t("flood_limited", "fr")
