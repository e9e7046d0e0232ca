"""The desk with a real Store: new-request notices, the cross-room listing, deciding from the
desk, locating an id that is in another room, absences, digest and reminders."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from test_service import LEVO, load_care
from unit_helpers import Setup, write

from bot.care import commands as cmd
from bot.care.service import CareService
from bot.desk.absence import Absence
from bot.desk.calendar import BusinessCalendar
from bot.desk.naming import initials, labels_for
from bot.desk.service import DeskService, is_elsewhere
from bot.desk.turnaround import Turnaround
from bot.store import Store

PARIS = ZoneInfo("Europe/Paris")
ROOMS = {"pat-0001": "!alice:clinic.example", "pat-0004": "!dan:clinic.example", "pat-0005": "!eve:clinic.example"}
_events = itertools.count(1)

ROSTER_EXTRA = """\
  - id: pat-0004
    matrix_id: "@dan:clinic.example"
    display_name: "Dan Dupont"
    locale: en
    care:
      - practitioner: dr-martin
        last_consultation: 2026-10-01
        treatments:
          - name: "Levothyroxine 75 µg"
            long_term: true
  - id: pat-0005
    matrix_id: "@eve:clinic.example"
    display_name: "Eve Roux"
    care:
      - practitioner: dr-bernard
        last_consultation: 2026-10-01
        treatments:
          - name: "Ramipril 5 mg"
            long_term: true
"""


class Clock:
    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


class DeskTestStore(Store):
    """The real store; absences kept in memory here (their tables are the runtime's)."""

    absences: dict[str, Absence]
    told: dict[tuple[str, str], dt.date]

    async def absence(self, practitioner_id: str) -> Absence | None:
        return self.absences.get(practitioner_id)

    async def set_absence(self, absence: Absence) -> None:
        self.absences[absence.practitioner_id] = absence

    async def clear_absence(self, practitioner_id: str) -> bool:
        return self.absences.pop(practitioner_id, None) is not None

    async def absence_told(self, practitioner_id: str, patient_id: str) -> dt.date | None:
        return self.told.get((practitioner_id, patient_id))

    async def set_absence_told(self, practitioner_id: str, patient_id: str, day: dt.date) -> None:
        self.told[(practitioner_id, patient_id)] = day


class Env:
    def __init__(self, setup: Setup, store: DeskTestStore) -> None:
        text = setup.roster.read_text(encoding="utf-8").replace("messaging: false", "messaging: true")
        write(setup.roster, text + ROSTER_EXTRA)
        self.care = load_care(setup)
        self.store = store
        self.clock = Clock(dt.datetime(2026, 11, 26, 10, 0, tzinfo=PARIS))
        self.care_svc = CareService(store)
        self.turnaround = Turnaround(BusinessCalendar(), PARIS, dt.time(8, 0), 2)
        self.desk = DeskService(store, self.care_svc, self.turnaround)
        self.martin = self.care.roster.practitioner("dr-martin")

    def pair(self, patient: str, practitioner: str = "dr-martin"):
        return self.care.roster.pair(patient, practitioner)

    async def renew(self, patient: str, practitioner: str = "dr-martin", medication: str = LEVO):
        pair = self.pair(patient, practitioner)
        async with self.store.transaction():
            await self.care_svc.handle_message(self.care, pair, "patient", f"!renouveler {medication}", f"$r{next(_events)}", ROOMS[patient], today=dt.date(2026, 11, 26))
            return (await self.store.open_requests(patient))[-1]

    async def at_desk(self, body: str, practitioner=None):
        async with self.store.transaction():
            return await self.desk.handle(self.care, practitioner or self.martin, body, f"$d{next(_events)}", self.clock())


@pytest.fixture
async def env(setup: Setup, tmp_path: Path):
    store = await DeskTestStore.open(tmp_path / "data" / "carebot.db")
    store.absences, store.told = {}, {}
    try:
        yield Env(setup, store)
    finally:
        await store.close()


def test_room_labels_are_distinct_and_keep_full_names_out_by_default() -> None:
    patients = [("pat-0001", "Alice Dupont"), ("pat-0002", "Alice  DUPONT"), ("pat-0003", "Bob Durand")]
    by_id = labels_for("patient_id", patients)
    assert by_id == {"pat-0001": "pat-0001", "pat-0002": "pat-0002", "pat-0003": "pat-0003"}
    by_initials = labels_for("initials", patients)
    assert by_initials["pat-0001"] == "A. D. (pat-0001)" and len(set(by_initials.values())) == 3
    full = labels_for("full_name", patients)
    assert full == {"pat-0001": "Alice Dupont (pat-0001)", "pat-0002": "Alice  DUPONT (pat-0002)", "pat-0003": "Bob Durand"}
    assert initials("Jean-Marc Le Goff") == "J.-M. L. G."


async def test_new_request_notice_names_patient_medication_id_and_links_the_pair_room(env: Env) -> None:
    req = await env.renew("pat-0001")
    post = await env.desk.new_request(env.care, env.pair("pat-0001"), req)
    assert "R1" in post.text and "Alice Dupont" in post.text and LEVO in post.text
    assert post.link and post.link.startswith("https://matrix.to/#/%21alice%3Aclinic.example/") and post.link in post.text
    assert "!accepter R1" in post.text and post.request.id == req.id


async def test_pending_in_the_desk_lists_all_patients_oldest_first_with_age(env: Env) -> None:
    first = await env.renew("pat-0001")
    await env.renew("pat-0004")
    await env.renew("pat-0005", "dr-bernard", "Ramipril 5 mg")  # another practitioner's patient
    env.clock.at = dt.datetime.fromtimestamp(first.created_at, PARIS) + dt.timedelta(days=3)
    out = await env.at_desk("!attente")
    text = out.desk[0].text
    assert text.splitlines()[0].startswith("Demandes en attente de vos patients (2)")
    assert text.index("Alice Dupont") < text.index("Dan Dupont")
    assert "Eve Roux" not in text and "depuis 3\xa0jours" in text  # babel: no-break space
    english = (await env.at_desk("!pending")).desk[0].text  # the English command word: English
    assert english.startswith("Pending requests of your patients (2), oldest first:") and "— 3 days ago" in english


async def test_decision_from_the_desk_reaches_the_patient_in_their_room(env: Env) -> None:
    req = await env.renew("pat-0004")  # Dan reads English
    out = await env.at_desk("!accepter R1 Renewed for 3 months")
    [answer] = out.pair
    assert answer.room_id == ROOMS["pat-0004"] and answer.reply_to == req.event_id
    [reply] = answer.replies
    assert reply.text.startswith("Your practitioner answered your request R1: approved.\n") and "Renewed for 3 months" in reply.text
    assert reply.notify  # m.text: the patient is notified
    assert reply.renewal[:2] == ("R1", "approved") and reply.for_practitioner is None
    assert "Dan Dupont" in out.desk[0].text and "acceptée" in out.desk[0].text
    again = await env.at_desk("!refuser R1 non")
    assert again.pair == [] and "déjà acceptée" in again.desk[0].text


async def test_other_practitioners_ids_stay_unknown_in_the_desk(env: Env) -> None:
    await env.renew("pat-0005", "dr-bernard", "Ramipril 5 mg")
    out = await env.at_desk("!accepter R1")
    assert out.pair == [] and out.desk[0].text.startswith("Je ne trouve pas de demande R1")
    assert (await env.store.request(1)).status == "pending"


async def test_an_id_of_another_room_of_the_same_practitioner_is_located(env: Env) -> None:
    req = await env.renew("pat-0004")
    parsed = cmd.parse("!accepter R1")
    assert is_elsewhere(parsed, "practitioner", req, env.pair("pat-0001"), ROOMS["pat-0001"])
    assert not is_elsewhere(parsed, "patient", req, env.pair("pat-0001"), ROOMS["pat-0001"])
    assert not is_elsewhere(parsed, "practitioner", req, env.pair("pat-0004"), ROOMS["pat-0004"])  # its own room
    eve = env.pair("pat-0005", "dr-bernard")
    assert not is_elsewhere(parsed, "practitioner", req, eve, ROOMS["pat-0005"])  # another practitioner
    reply = env.desk.elsewhere(env.care, env.pair("pat-0001"), req, "fr")
    assert "R1" in reply.text and "https://matrix.to/#/%21dan%3Aclinic.example" in reply.text and "Dan" not in reply.text


async def test_away_and_back(env: Env) -> None:
    out = await env.at_desk("!absent 07/12/2026 Le Dr Bernard me remplace")
    assert "lundi 7 décembre 2026" in out.desk[0].text and "Dr Bernard me remplace" in out.desk[0].text
    listing = (await env.at_desk("!attente")).desk[0].text
    assert listing.startswith("Absence en cours : retour le lundi 7 décembre 2026")
    alice = env.pair("pat-0001")
    first = await env.desk.absence_reply(env.care, alice, env.clock())
    # The day typed is the return day: the patient reads it as such (not "jusqu'au", which
    # would read as away that day too).
    assert first is not None and "retour prévu le lundi 7 décembre 2026" in first.text and "15" in first.text
    assert "jusqu'au" not in first.text
    assert "Le Dr Bernard me remplace" in first.text
    assert await env.desk.absence_reply(env.care, alice, env.clock()) is None  # once a day
    env.clock.at += dt.timedelta(days=1)
    assert await env.desk.absence_reply(env.care, alice, env.clock()) is not None
    assert (await env.at_desk("!retour")).desk[0].text.startswith("Bon retour")
    assert await env.desk.absence_reply(env.care, alice, env.clock() + dt.timedelta(days=1)) is None
    assert (await env.at_desk("!retour")).desk[0].text == env.care.texts.get("desk_not_away", "fr")


async def test_bad_return_dates_are_explained(env: Env) -> None:
    assert "« demain »" in (await env.at_desk("!absent demain")).desk[0].text
    assert "après aujourd'hui" in (await env.at_desk("!absent 2026-11-26")).desk[0].text
    assert (await env.at_desk("!absent")).desk[0].text == "Utilisation : !absent <date de retour> [message]"
    assert env.store.absences == {}


async def test_desk_help_plain_messages_and_patient_commands(env: Env) -> None:
    help_text = (await env.at_desk("!aide")).desk[0].text
    for usage in ("!attente", "!accepter <id> [note]", "!refuser <id> <motif>", "!absent <date de retour> [message]", "!retour"):
        assert usage in help_text
    assert "personne" in (await env.at_desk("bonjour, pouvez-vous prévenir Mme Dupont ?")).desk[0].text
    assert "!renouveler" in (await env.at_desk("!renouveler Doliprane")).desk[0].text


async def test_digest_and_reminders_in_the_practitioners_language(env: Env) -> None:
    req = await env.renew("pat-0001")
    created = dt.datetime.fromtimestamp(req.created_at, PARIS)
    later = created + dt.timedelta(days=7)  # several business days
    later = later.replace(hour=8, minute=5)
    digest = (await env.desk.digest(env.care, env.martin, later)).text
    assert digest.startswith("Bonjour. 1 demande(s) en attente") and "⏰ plus de 2 jours ouvrés" in digest
    [reminder] = await env.desk.reminders(env.care, env.martin, later, set())
    assert reminder.text.startswith("Rappel : la demande R1 de Alice Dupont") and reminder.request.id == req.id
    assert await env.desk.reminders(env.care, env.martin, later, {req.id}) == []


def test_pair_room_names_show_the_practitioner_and_a_distinct_label(env: Env) -> None:
    from bot.desk.naming import pair_room_names

    names = pair_room_names(env.care, "patient_id")
    assert names[("pat-0001", "dr-martin")] == "Messagerie — Dr Claire Martin · pat-0001"
    assert names[("pat-0004", "dr-martin")] == "Messaging — Dr Claire Martin · pat-0004"  # Dan reads English
    martin = [n for (_, doc), n in names.items() if doc == "dr-martin"]
    assert len(martin) == len(set(martin)) >= 2
    assert all("Dupont" not in n for n in names.values())
    full = pair_room_names(env.care, "full_name")
    assert full[("pat-0001", "dr-martin")] == "Messagerie — Dr Claire Martin · Alice Dupont"


def test_a_long_listing_shows_the_oldest_and_counts_the_rest(env: Env) -> None:
    from types import SimpleNamespace

    from bot.desk.compose import MAX_LISTED, DeskText, Line

    now = dt.datetime(2026, 11, 26, 10, 0, tzinfo=PARIS)
    lines = [Line(SimpleNamespace(id=i, created_at=now.timestamp() - 3600 * (400 - i), medication="Levo"), f"P{i}", "l") for i in range(1, 301)]
    text = DeskText(env.care.texts, "fr").listing(lines, now, env.turnaround)
    assert text.splitlines()[0].startswith("Demandes en attente de vos patients (300)")
    assert "• R1 — P1" in text and f"• R{MAX_LISTED} — " in text and f"• R{MAX_LISTED + 1} — " not in text
    assert text.endswith(f"… et {300 - MAX_LISTED} autres, plus récentes.")
    english = DeskText(env.care.texts, "en").listing(lines, now, env.turnaround)
    assert english.endswith(f"… and {300 - MAX_LISTED} newer ones.")
    assert len(text.encode()) < 16000


async def test_desk_answers_in_the_language_of_the_command_word(env: Env) -> None:
    await env.renew("pat-0001")
    assert (await env.at_desk("!pending")).desk[0].text.startswith("Pending requests of your patients (1)")
    assert (await env.at_desk("!attente")).desk[0].text.startswith("Demandes en attente de vos patients (1)")
    assert (await env.at_desk("!help")).desk[0].text.startswith("Your desk:")
    assert "Monday, 7 December 2026" in (await env.at_desk("!away 2026-12-07")).desk[0].text


async def test_a_decision_from_the_desk_counts_once_toward_the_flood_limit(env: Env) -> None:
    # The desk checks the limit, then hands the decision to the care service: counting it
    # there again let a practitioner make only half the decisions the limit allows.
    env.care = dataclasses.replace(env.care, practitioner_per_minute=8)  # within the patients' own limit
    for n in range(8):
        await env.renew("pat-0001" if n % 2 == 0 else "pat-0004")
        out = await env.at_desk(f"!accepter R{n + 1}")
        assert len(out.pair) == 1, (n, [p.text for p in out.desk])
    assert not (await env.at_desk("!attente")).pair and "minute" in (await env.at_desk("!attente")).desk[0].text


async def test_a_practitioner_clears_sixty_renewals_in_a_minute_where_a_patient_gets_ten_commands(env: Env) -> None:
    assert (env.care.flood_per_minute, env.care.practitioner_per_minute) == (10, 60)
    env.care_svc.clock = lambda: 1000.0  # everything below happens in the same instant
    limits = env.care
    for n in range(60):
        env.care = dataclasses.replace(limits, flood_per_minute=1000)  # the requests themselves are not limited here
        await env.renew(("pat-0001", "pat-0004")[n % 2])
        env.care = limits
        out = await env.at_desk(f"!accepter R{n + 1}")
        assert len(out.pair) == 1, (n, [p.text for p in out.desk])
    refused = await env.at_desk("!attente")
    assert not refused.pair and "!attente" in refused.desk[0].text and "minute" in refused.desk[0].text
    # A patient's budget is the smaller one.
    patient = [await env.care_svc.handle_message(env.care, env.pair("pat-0005", "dr-bernard"), "patient", "!statut", f"$s{n}", ROOMS["pat-0005"]) for n in range(11)]
    assert [len(r) for r in patient[:10]] == [1] * 10 and patient[10][0].text == env.care.texts.get("flood_limited", "fr")


async def test_the_desk_flood_notice_is_written_for_the_practitioner_and_every_refused_command_is_told(env: Env) -> None:
    limit = env.care.practitioner_per_minute
    for _ in range(limit):
        await env.at_desk("!attente")
    first = await env.at_desk("!pending")
    second = await env.at_desk("!back")
    for out, command in ((first, "!pending"), (second, "!back")):
        [post] = out.desk
        assert command in post.text and "minute" in post.text, post.text
        assert "praticien" not in post.text and "practitioner" not in post.text  # not the patient's text
    assert first.desk[0].text.startswith("You sent")  # in the language of the command word


async def test_the_emergency_heads_up_in_the_desk_is_an_alert_and_a_new_request_is_not(env: Env) -> None:
    post = env.desk.emergency(env.care, env.pair("pat-0001"), ROOMS["pat-0001"], "$e1")
    assert post.alert and post.text.startswith("⚠️ Alice Dupont")
    req = await env.renew("pat-0001")
    assert not (await env.desk.new_request(env.care, env.pair("pat-0001"), req)).alert
