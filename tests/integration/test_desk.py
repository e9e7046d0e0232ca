"""The practitioner desk against a real Synapse, seen from Element's stack (matrix-js-sdk +
Rust crypto): one practitioner with 12 patients (two of them named "Alice Dupont"), another
practitioner with one patient, the real bot.

One scenario is built once for the module (bot, rooms, peers) and the tests below walk through
it in order: names and the Space, the desk's notices, listing and deciding, the patient's view,
a late device, the digest and reminders (the desk clock is moved), and an absence.
The Space is created with only SPACE_INITIAL_CHILDREN_HERE pair rooms in its initial state (the
bot's cap is lowered for this module), so the rest go through the one-by-one path that large
practices take.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
import yaml

from bot.runtime.runtime import CareBot
from tests.integration.helpers import NioUser, element_user, js_reply_to, replying_to, running_bot, wait_js_event

pytestmark = [pytest.mark.integration, pytest.mark.interop, pytest.mark.asyncio(loop_scope="module")]

PARIS = ZoneInfo("Europe/Paris")
LEVO = "Levothyroxine 75 µg"
N_PATIENTS = 12
SPACE_INITIAL_CHILDREN_HERE = 4
_users = itertools.count(1)


@dataclass
class Scenario:
    bot: CareBot
    bot_id: str
    doc: Any  # js peer: Dr Claire Martin
    alice: Any  # js peer: pat-01 "Alice Dupont"
    alice2: NioUser  # pat-02, also "Alice Dupont"
    other: NioUser  # pat-13, patient of Dr Paul Bernard
    rooms: dict[str, str]  # patient id -> pair room id (dr-m's patients and pat-13)
    desk: str
    space: str
    roster_path: Path
    roster: dict
    newcomer: str  # a registered user, not in the roster yet

    async def desk_reply(self, body: str, what: str, **kw: Any) -> dict:
        asked = await self.doc.send(self.desk, body)
        return await wait_js_event(
            self.doc, self.desk, lambda e: e["sender"] == self.bot_id and js_reply_to(e) == asked and e.get("decrypted"), what, **kw
        )


def _roster(doc: str, other_doc: str, patients: list[str]) -> dict:
    last = (dt.date.today() - dt.timedelta(days=30)).isoformat()
    care = lambda pid: [{"practitioner": pid, "last_consultation": last, "treatments": [{"name": LEVO, "long_term": True}]}]  # noqa: E731
    names = ["Alice Dupont", "Alice Dupont"] + [f"Patient {chr(ord('C') + i)} Test" for i in range(N_PATIENTS - 2)]
    return {
        "practitioners": [
            {"id": "dr-m", "matrix_id": doc, "display_name": "Dr Claire Martin", "messaging": True},
            {"id": "dr-b", "matrix_id": other_doc, "display_name": "Dr Paul Bernard", "messaging": True},
        ],
        "patients": [
            *({"id": f"pat-{i + 1:02d}", "matrix_id": patients[i], "display_name": names[i], "care": care("dr-m")} for i in range(N_PATIENTS)),
            {"id": "pat-13", "matrix_id": patients[N_PATIENTS], "display_name": "Olga Other", "care": care("dr-b")},
        ],
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scenario(homeserver, tmp_path_factory) -> AsyncIterator[Scenario]:
    tmp: Path = tmp_path_factory.mktemp("desk")

    def user(prefix: str) -> tuple[str, str]:
        localpart, password = f"{prefix}{next(_users)}x", "pw-desk-secret"
        return homeserver.register(localpart, password), password

    bot, doc, other_doc = user("deskbot"), user("drm"), user("drb")
    patients = [user(f"pat{i}") for i in range(N_PATIENTS + 2)]
    repo = Path(__file__).resolve().parents[2]
    (tmp / "bot-password").write_text(bot[1])
    roster = _roster(doc[0], other_doc[0], [p[0] for p in patients])
    (tmp / "roster.yaml").write_text(yaml.safe_dump(roster, allow_unicode=True))
    config = {
        "homeserver": {"url": homeserver.url},
        "bot": {"user_id": bot[0], "password_file": "bot-password"},
        "storage": {"path": "data"},
        "roster": {"path": "roster.yaml"},
        "policies": {"path": str(repo / "policies")},
        "sync": {"timeout_ms": 2000},
        "desk": {"digest_time": "08:00", "reminder_business_days": 2},
    }
    (tmp / "config.yaml").write_text(yaml.safe_dump(config))
    async with contextlib.AsyncExitStack() as stack:
        cap = stack.enter_context(pytest.MonkeyPatch.context())
        cap.setattr("bot.runtime.desks.SPACE_INITIAL_CHILDREN", SPACE_INITIAL_CHILDREN_HERE)
        doc_peer = await element_user("doc", doc, homeserver.url)
        stack.push_async_callback(doc_peer.close)
        alice = await element_user("alice", patients[0], homeserver.url)
        stack.push_async_callback(alice.close)
        alice2 = NioUser(*patients[1], homeserver.url, tmp / "clients" / "alice2")
        other = NioUser(*patients[N_PATIENTS], homeserver.url, tmp / "clients" / "other")
        for u in (alice2, other):
            await u.start()
            stack.push_async_callback(u.close)
        running = await stack.enter_async_context(running_bot(tmp / "config.yaml", ready_timeout=120))
        rooms = {r.patient_id: r.room_id for r in await running.store.rooms()}
        record = await running.store.desk("dr-m")
        assert record is not None and record.desk_room_id and record.space_id, record
        # The practitioner accepts every invite: the Space, the desk, the 12 pair rooms.
        wanted = {record.desk_room_id, record.space_id, *(rooms[f"pat-{i + 1:02d}"] for i in range(N_PATIENTS))}
        joined: set[str] = set()
        while joined != wanted:
            room_id = await doc_peer.wait_invite(timeout=60)
            if room_id in wanted:
                await doc_peer.join(room_id)
                joined.add(room_id)
        assert (await alice.wait_invite(timeout=60)) == rooms["pat-01"]
        await alice.join(rooms["pat-01"])
        await alice2.wait_room(lambda r: r == rooms["pat-02"])
        await other.wait_room(lambda r: r == rooms["pat-13"])
        yield Scenario(
            running, bot[0], doc_peer, alice, alice2, other, rooms, record.desk_room_id, record.space_id,
            tmp / "roster.yaml", roster, patients[N_PATIENTS + 1][0],
        )


def _bot_notice(s: Scenario, **content: Any):  # noqa: ANN202
    def match(e: dict) -> bool:
        c = e.get("content") or {}
        return e["sender"] == s.bot_id and bool(e.get("decrypted")) and all(c.get(k) == v for k, v in content.items())
    return match


async def test_pair_rooms_have_distinct_names_and_the_space_holds_desk_and_pair_rooms(scenario: Scenario) -> None:
    s = scenario
    listed = {r["roomId"]: r for r in await s.doc.rooms()}
    mine = [s.rooms[f"pat-{i + 1:02d}"] for i in range(N_PATIENTS)]
    names = [listed[r]["name"] for r in mine]
    assert len(set(names)) == N_PATIENTS, names  # even the two "Alice Dupont"
    assert all("Dr Claire Martin" in n and "Dupont" not in n for n in names), names  # no full name in clear
    assert s.rooms["pat-13"] not in listed
    space = listed[s.space]
    assert space["isSpace"] and space["state"]["carebot.space"] == {"practitioner": "dr-m"}, space
    assert sorted(space["children"]) == sorted([s.desk, *mine]), space  # desk + every pair room, nothing else
    created = [a for a in await s.bot.store.audit_since(0) if a["action"] == "space.created" and a["subject"] == s.space]
    assert created[0]["details"]["children"] == 1 + SPACE_INITIAL_CHILDREN_HERE  # the rest were added after
    desk = listed[s.desk]
    assert not desk["isSpace"] and desk["state"]["carebot.desk"] == {"practitioner": "dr-m"}, desk
    members = await s.bot.client.joined_members(s.desk)
    assert sorted(m.user_id for m in members.members) == sorted([s.bot_id, s.doc.user_id])
    # The patient sees their practitioner's name.
    alice_view = await s.alice.room(s.rooms["pat-01"])
    assert "Dr Claire Martin" in alice_view["name"], alice_view
    assert all(not r["isSpace"] and r["roomId"] in (s.rooms["pat-01"],) for r in await s.alice.rooms()), "the patient sees no Space or desk"


async def test_new_requests_reach_the_desk_and_are_listed_and_decided_there(scenario: Scenario) -> None:
    s = scenario
    request_event = await s.alice.send(s.rooms["pat-01"], f"!renouveler {LEVO}")
    mine = await wait_js_event(s.alice, s.rooms["pat-01"], lambda e: e["sender"] == s.bot_id and js_reply_to(e) == request_event and e.get("decrypted"), "pending reply")
    rid = mine["content"]["carebot.renewal"]["id"]
    notice = await wait_js_event(s.doc, s.desk, lambda e: _bot_notice(s)(e) and (e["content"].get("carebot.renewal") or {}).get("id") == rid, "desk notice")
    c = notice["content"]
    assert c["msgtype"] == "m.notice" and c["carebot.renewal"]["status"] == "pending" and c["carebot.patient"] == {"id": "pat-01"}
    assert rid in c["body"] and "Alice Dupont" in c["body"] and LEVO in c["body"], c["body"]
    link = re.search(r"https://matrix\.to/#/(\S+)", c["body"])
    assert link and link.group(1).startswith("%21") and s.rooms["pat-01"].split(":")[0][1:] in link.group(1), c["body"]

    ask2 = await s.alice2.send(s.rooms["pat-02"], f"!renouveler {LEVO}")
    rid2 = (await s.alice2.wait_for(replying_to(ask2))).content["carebot.renewal"]["id"]
    await wait_js_event(s.doc, s.desk, lambda e: _bot_notice(s)(e) and (e["content"].get("carebot.renewal") or {}).get("id") == rid2, "second desk notice")
    ask3 = await s.other.send(s.rooms["pat-13"], f"!renouveler {LEVO}")
    rid_other = (await s.other.wait_for(replying_to(ask3))).content["carebot.renewal"]["id"]

    listing = (await s.desk_reply("!attente", "pending list"))["content"]["body"]
    assert listing.index(rid) < listing.index(rid2) and listing.count("Alice Dupont") == 2, listing
    assert "Olga" not in listing and rid_other not in listing, listing

    # Another practitioner's id stays unknown, from the desk and from a pair room.
    unknown = await s.desk_reply(f"!accepter {rid_other}", "unknown id")
    assert "Olga" not in unknown["content"]["body"] and rid_other in unknown["content"]["body"]
    # An id of another of the practitioner's rooms, typed in a pair room: where it is.
    asked = await s.doc.send(s.rooms["pat-01"], f"!accepter {rid2}")
    where = await wait_js_event(s.doc, s.rooms["pat-01"], lambda e: e["sender"] == s.bot_id and js_reply_to(e) == asked and e.get("decrypted"), "where-is answer")
    assert "matrix.to" in where["content"]["body"] and s.rooms["pat-02"].split(":")[0][1:] in where["content"]["body"]
    assert "Dupont" not in where["content"]["body"]

    # Deciding from the desk: the patient reads it in their room, as a reply to their request.
    decided = await s.desk_reply(f"!accepter {rid} Ordonnance prête", "decision confirmation")
    assert "Alice Dupont" in decided["content"]["body"]
    approved = await wait_js_event(
        s.alice, s.rooms["pat-01"],
        lambda e: e["sender"] == s.bot_id and e.get("decrypted") and (e["content"].get("carebot.renewal") or {}).get("status") == "approved",
        "approval in the pair room",
    )
    assert js_reply_to(approved) == request_event and "Ordonnance prête" in approved["content"]["body"]
    assert (await s.bot.store.request(int(rid[1:]))).status == "approved"
    # The decision rings on the patient's Element (default push rules, evaluated on the decrypted
    # event): m.text, its first line (the lock screen) naming no medication. Her pending-request
    # answer, an m.notice, stays silent.
    assert approved["content"]["msgtype"] == "m.text", approved["content"]
    assert approved["content"]["body"].split("\n")[0] == f"Votre praticien a répondu à votre demande {rid} : acceptée."
    push = {e["eventId"]: e for e in (await s.alice.call("pushDetails", roomId=s.rooms["pat-01"]))["events"]}
    assert push[approved["eventId"]]["notify"] and push[approved["eventId"]]["rule"] != ".m.rule.suppress_notices", push[approved["eventId"]]
    assert not push[mine["eventId"]]["notify"] and push[mine["eventId"]]["rule"] == ".m.rule.suppress_notices", push[mine["eventId"]]


async def test_the_patient_never_reads_practitioner_instructions(scenario: Scenario) -> None:
    s = scenario
    # An emergency: the numbers for the patient in their room, the heads-up in the desk.
    said = await s.alice.send(s.rooms["pat-01"], "j'ai une douleur thoracique depuis ce matin")
    numbers = await wait_js_event(s.alice, s.rooms["pat-01"], lambda e: _bot_notice(s, **{"carebot.emergency": True})(e) and js_reply_to(e) == said, "emergency numbers")
    assert "15" in numbers["content"]["body"] and s.doc.user_id in numbers["content"]["m.mentions"]["user_ids"]
    flagged = await wait_js_event(s.doc, s.desk, lambda e: _bot_notice(s)(e) and str(e["content"]["body"]).startswith("⚠️ Alice Dupont"), "emergency in the desk")
    assert s.rooms["pat-01"].lstrip("!")[:8] in flagged["content"]["body"]
    # …and it rings: Element's push rules, evaluated on the decrypted event, notify and highlight
    # (a notice would be silenced by .m.rule.suppress_notices, mention or not).
    push = {e["eventId"]: e for e in (await s.doc.call("pushDetails", roomId=s.desk))["events"]}[flagged["eventId"]]
    assert push["notify"] and push["highlight"] and push["rule"] == ".m.rule.is_user_mention", push
    # Asked for help in a patient's room, the practitioner is pointed to the desk.
    asked = await s.doc.send(s.rooms["pat-01"], "!aide")
    pointer = await wait_js_event(s.doc, s.rooms["pat-01"], lambda e: e["sender"] == s.bot_id and js_reply_to(e) == asked and e.get("decrypted"), "help pointing to the desk")
    assert "bureau" in pointer["content"]["body"] and s.desk.lstrip("!")[:8] in pointer["content"]["body"]
    for e in await s.alice.messages(s.rooms["pat-01"]):
        if e["sender"] == s.bot_id:
            body = str((e.get("content") or {}).get("body", ""))
            assert "!accepter" not in body and "!refuser" not in body and "!approve" not in body, body


async def test_a_late_device_of_the_practitioner_gets_the_pending_list_in_the_desk(scenario: Scenario, homeserver) -> None:
    s = scenario
    from tests.interop.peer import JsPeer

    late = await JsPeer.start("doc-late")
    try:
        await late.login(homeserver.url, s.doc.user_id, "pw-desk-secret", device_name="doc-late-element")
        catch_up = await wait_js_event(
            late, s.desk, lambda e: e["sender"] == s.bot_id and e.get("decrypted") and "Alice Dupont" in str(e["content"].get("body", "")),
            "pending list readable on the new device", timeout=60,
        )
        assert "R" in catch_up["content"]["body"]
        # Its unverified device is reported once, in the desk, never in a pair room.
        warned = await wait_js_event(
            s.doc, s.desk, lambda e: e["sender"] == s.bot_id and e.get("decrypted") and "doc-late-element" in str(e["content"].get("body", "")),
            "device notice in the desk", timeout=60,
        )
        assert warned["content"]["msgtype"] == "m.notice"
        for room_id in s.rooms.values():
            if room_id == s.rooms["pat-13"]:
                continue
            for e in await s.doc.messages(room_id):
                assert "doc-late-element" not in str((e.get("content") or {}).get("body", "")), room_id
    finally:
        await late.close()


async def test_digest_and_reminder_on_the_next_business_mornings(scenario: Scenario) -> None:
    s = scenario
    clock = s.bot.running.desk_clock
    pending = await s.bot.store.pending_for_practitioner("dr-m")
    assert pending, "the scenario left requests pending"
    created = dt.datetime.fromtimestamp(pending[0].created_at, PARIS)
    # Five calendar days later at 08:30 (or the next business day): more than 2 business days.
    from bot.desk.calendar import BusinessCalendar

    day = BusinessCalendar().add_business_days(created.date(), 3)
    before = {e["eventId"] for e in await s.doc.messages(s.desk)}
    clock.travel_to(dt.datetime.combine(day, dt.time(8, 30), tzinfo=PARIS))

    def new(prefix: str):  # noqa: ANN202
        return lambda e: e["eventId"] not in before and _bot_notice(s)(e) and str(e["content"]["body"]).startswith(prefix)

    digest = await wait_js_event(s.doc, s.desk, new("Bonjour."), "digest", timeout=30)
    assert "⏰" in digest["content"]["body"] and all(f"R{r.id} " in digest["content"]["body"] for r in pending)
    reminder = await wait_js_event(s.doc, s.desk, new("Rappel"), "reminder", timeout=30)
    assert reminder["content"]["carebot.renewal"]["status"] == "pending" and "carebot.patient" in reminder["content"]


async def test_absence_tells_writing_patients_once_a_day_and_requests_still_queue(scenario: Scenario) -> None:
    s = scenario
    back = (s.bot.running.desk_clock.now().astimezone(PARIS).date() + dt.timedelta(days=10))
    told = await s.desk_reply(f"!absent {back.isoformat()} Le Dr Bernard me remplace", "absence set")
    assert "Le Dr Bernard me remplace" in told["content"]["body"]
    room = s.rooms["pat-02"]
    n = len(s.alice2.seen)
    await s.alice2.send(room, "Bonjour docteur")
    notice = await s.alice2.wait_for(lambda m: m.sender == s.bot_id and "retour prévu le" in str(m.content.get("body", "")), after=n)
    assert "Le Dr Bernard me remplace" in notice.content["body"] and "15" in notice.content["body"]
    for r in await s.bot.store.open_requests("pat-02"):  # a fresh request, not a duplicate
        cancel = await s.alice2.send(room, f"!annuler R{r.id}")
        await s.alice2.wait_for(replying_to(cancel), after=n)
    ask = await s.alice2.send(room, "!renouveler Levothyroxine 75 µg")
    queued = await s.alice2.wait_for(replying_to(ask), after=n)
    rid = queued.content["carebot.renewal"]["id"]
    await wait_js_event(s.doc, s.desk, lambda e: _bot_notice(s)(e) and (e["content"].get("carebot.renewal") or {}).get("id") == rid, "request queued in the desk")
    absence_notices = [m for m in s.alice2.seen[n:] if m.sender == s.bot_id and "retour prévu le" in str(m.content.get("body", ""))]
    assert len(absence_notices) == 1, "one notice a day"
    listing = (await s.desk_reply("!attente", "listing during the absence"))["content"]["body"]
    assert listing.startswith("Absence en cours"), listing
    assert (await s.desk_reply("!retour", "back"))["content"]["body"].startswith("Bon retour")


async def _space_children(s: Scenario, until: Any, timeout: float = 30.0) -> list[str]:
    import asyncio

    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        children = (await s.doc.room(s.space))["children"]
        if until(children) or asyncio.get_running_loop().time() > deadline:
            return children
        await asyncio.sleep(0.3)


async def test_reconciliation_adds_new_pairs_to_the_space_and_removes_closed_ones(scenario: Scenario) -> None:
    s = scenario
    last = (dt.date.today() - dt.timedelta(days=30)).isoformat()
    roster = dict(s.roster)
    roster["patients"] = [p for p in s.roster["patients"] if p["id"] != "pat-12"] + [
        {"id": "pat-14", "matrix_id": s.newcomer, "display_name": "Nina New",
         "care": [{"practitioner": "dr-m", "last_consultation": last, "treatments": [{"name": LEVO, "long_term": True}]}]},
    ]
    s.roster_path.write_text(yaml.safe_dump(roster, allow_unicode=True))
    assert await s.bot.reload()
    new_room = (await s.bot.store.room_for_pair("pat-14", "dr-m")).room_id
    closed = s.rooms["pat-12"]
    children = await _space_children(s, lambda c: new_room in c and closed not in c)
    assert new_room in children and closed not in children and s.desk in children, children
    assert len(children) == N_PATIENTS + 1  # desk + 11 kept + 1 new
    invited = await s.doc.wait_invite(room_id=new_room, timeout=30)
    assert (await s.doc.room(invited))["name"].endswith("Dr Claire Martin · pat-14")
    # Reconciling again changes nothing: no second Space or desk.
    before = set((await s.bot.client.joined_rooms()).rooms)
    await s.bot.reconcile()
    assert set((await s.bot.client.joined_rooms()).rooms) == before
    assert (await s.bot.store.desk("dr-m")).space_id == s.space


async def test_a_practitioner_who_leaves_the_desk_is_invited_again_and_welcomed(scenario: Scenario) -> None:
    s = scenario
    import asyncio

    before = {e["eventId"] for e in await s.doc.messages(s.desk)}
    await s.doc.leave(s.desk)
    await s.doc.leave(s.space)

    seen: set[str] = set()

    async def invited_again(room_id: str) -> bool:
        try:
            return (await s.doc.room(room_id))["membership"] == "invite"
        except Exception:  # noqa: BLE001 - not in the sdk's view (yet)
            return False

    async def noted() -> None:
        """The bot has seen both leaves: each noted for a re-invite, or already re-invited (a
        reconciliation of its own — the roster watcher's reload after the previous test —
        may run first and clear the note)."""
        while len(seen) < 2:
            for r in (s.desk, s.space):
                if r not in seen and (await s.bot.store.needs_reinvite(r, s.doc.user_id) or await invited_again(r)):
                    seen.add(r)
            await asyncio.sleep(0.2)

    await asyncio.wait_for(noted(), 30)
    await s.bot.reconcile()  # as at the next start or roster reload
    for room_id in (s.desk, s.space):
        await s.doc.wait_invite(room_id=room_id, timeout=30)
        await s.doc.join(room_id)
    await wait_js_event(s.doc, s.desk, lambda e: e["eventId"] not in before and _bot_notice(s)(e) and str(e["content"]["body"]).startswith("Bienvenue"), "welcome again")


async def test_a_decision_or_absence_typed_in_the_desk_from_an_unsigned_device_changes_nothing(homeserver, new_user, tmp_path) -> None:
    """The desk passes decisions and absences through the same trust gate as pair rooms (`cross-signed`)."""
    import asyncio

    from tests.integration.helpers import make_clinic
    from tests.interop.peer import JsPeer

    clinic = make_clinic(tmp_path, homeserver, new_user)
    config = yaml.safe_load(clinic.config_path.read_text())
    clinic.config_path.write_text(yaml.safe_dump({**config, "trust": "cross-signed"}))
    patient = await element_user("patient", clinic.patient, homeserver.url)
    doc = await element_user("practitioner", clinic.practitioner, homeserver.url)
    stolen = await JsPeer.start("desk-unsigned")
    try:
        async with running_bot(clinic.config_path) as bot:
            bot_id = clinic.bot[0]
            room_id = (await bot.store.room_for_pair("pat-1", "dr-a")).room_id
            desk = (await bot.store.desk("dr-a")).desk_room_id
            await patient.wait_invite(room_id=room_id, timeout=30)
            await patient.join(room_id)
            for r in (room_id, desk):
                await doc.wait_invite(room_id=r, timeout=30)
                await doc.join(r)
            asked = await patient.send(room_id, f"!renouveler {LEVO}")
            await wait_js_event(doc, desk, lambda e: e["sender"] == bot_id and (e["content"].get("carebot.renewal") or {}).get("id") == "R1", "the request in the desk")

            await stolen.login(homeserver.url, *clinic.practitioner, device_name="Unknown laptop")

            async def sees_desk() -> None:
                while True:
                    try:
                        if (await stolen.room(desk))["membership"] == "join":
                            return
                    except Exception:  # noqa: BLE001 - not synced yet
                        pass
                    await asyncio.sleep(0.3)

            await asyncio.wait_for(sees_desk(), 30)
            await stolen.send(desk, "!accepter R1 ok")
            refusal = await wait_js_event(
                doc, desk, lambda e: e["sender"] == bot_id and e.get("decrypted") and stolen.device_id in str(e["content"].get("body", "")),
                "the refusal naming the unsigned device",
            )
            assert "Unknown laptop" in refusal["content"]["body"], refusal["content"]["body"]
            assert (await bot.store.request(1)).status == "pending"
            # An absence would change what patients are told: gated the same way.
            await stolen.send(desk, f"!absent {(dt.date.today() + dt.timedelta(days=10)).isoformat()}")
            await wait_js_event(
                doc, desk, lambda e: e["sender"] == bot_id and e.get("decrypted") and "!absent" in str(e["content"].get("body", ""))
                and stolen.device_id in str(e["content"].get("body", "")), "the refusal of the absence",
            )
            assert await bot.store.absence("dr-a") is None

            await doc.send(desk, "!accepter R1 Ordonnance prête")
            approved = await wait_js_event(
                patient, room_id, lambda e: e["sender"] == bot_id and (e["content"].get("carebot.renewal") or {}).get("status") == "approved",
                "the approval, from the signed device",
            )
            assert js_reply_to(approved) == asked
    finally:
        await stolen.close()
        await doc.close()
        await patient.close()


async def test_a_desk_message_the_bot_cannot_decrypt_gets_a_resend_request_in_the_desk(homeserver, new_user, tmp_path) -> None:
    import uuid

    from tests.integration.helpers import make_clinic
    from tests.integration.test_undecryptable import _put_raw

    clinic = make_clinic(tmp_path, homeserver, new_user)
    config = yaml.safe_load(clinic.config_path.read_text())
    clinic.config_path.write_text(yaml.safe_dump({**config, "limits": {"undecryptable_wait_s": 3}}))
    doc = await clinic.user(clinic.practitioner, "doc").start()  # joins every invite
    try:
        async with running_bot(clinic.config_path) as bot:
            desk = (await bot.store.desk("dr-a")).desk_room_id
            await doc.wait_room(lambda r: r == desk)
            await doc.wait_for(lambda m: m.room_id == desk and str(m.content.get("body", "")).startswith("Bienvenue"))
            c = doc.client
            never = _put_raw(clinic.homeserver, c.access_token, desk, {
                "algorithm": "m.megolm.v1.aes-sha2",
                "ciphertext": "AwgAEnACgAkLmt6qF84IK++J7UDH2Za1YVchHyprqTqsg2yyOwAtHaZTwyNg",
                "sender_key": c.olm.account.identity_keys["curve25519"],
                "session_id": "no-such-session-" + uuid.uuid4().hex,
                "device_id": c.device_id,
            })
            resend = await doc.wait_for(replying_to(never))
            assert resend.room_id == desk and "envoyer à nouveau" in resend.content["body"]
    finally:
        await doc.close()
