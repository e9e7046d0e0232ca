"""Look at the demo as its users do: `python -m tests.interop.look` against a running `make run`.

The demo patient and the demo practitioner log in with Element's stack (matrix-js-sdk + Rust
crypto, tests/interop/peer.mjs), accept the bot's invites (pair room, Space, desk) and go
through a day: help, renewals (a brand name, a misspelt name, an unknown drug), status, a plain
message, an emergency, the desk's list, decisions from the desk and from the pair room, an
absence, then the English commands once. Then it prints, for each side:

- the room list: the name the client computes (`room.name`, what Element shows), Spaces and
  their children;
- every message in order, decrypted, with what the user's push rules say about it (evaluated
  by the sdk on the decrypted content, as Element does): `🔔` notify, `‼` highlight (a
  mention), `♪` sound, the rule that decided; and the notification text Element would show
  ("<sender>: <first line>") when it notifies;
- what the homeserver sees in clear: every room's state (names, topics, custom state).

Each run logs in new devices (their keys live in memory): on a demo that was already looked
at, the bot's notices about new devices and identity resets show up too. For a clean look:
`make clean && make run`, then this. Options: `--dir .dev`, `--out transcript.txt`, `--json`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.interop.peer import JsPeer

TIMEOUT = 30.0
Event = dict[str, Any]


@dataclass
class Demo:
    url: str
    bot: str
    patient: tuple[str, str]
    practitioner: tuple[str, str]
    patient_name: str
    practitioner_name: str

    @classmethod
    def read(cls, d: Path) -> Demo:
        config = yaml.safe_load((d / "config.yaml").read_text())
        roster = yaml.safe_load((d / "roster.yaml").read_text())
        passwords = json.loads((d / "demo-passwords.json").read_text())
        doc = roster["practitioners"][0]
        pat = roster["patients"][0]

        def who(user_id: str) -> tuple[str, str]:
            return user_id, passwords[user_id[1:].split(":")[0]]

        return cls(
            url=config["homeserver"]["url"],
            bot=config["bot"]["user_id"],
            patient=who(pat["matrix_id"]),
            practitioner=who(doc["matrix_id"]),
            patient_name=pat["display_name"],
            practitioner_name=doc["display_name"],
        )


@dataclass
class Side:
    label: str
    peer: JsPeer
    rooms: dict[str, str] = field(default_factory=dict)  # "pair" | "desk" | "space" -> room id
    steps: list[tuple[int, str, str]] = field(default_factory=list)  # (step, room key, sent body)


async def wait_for(peer: JsPeer, room_id: str, predicate: Callable[[Event], bool], what: str,
                   timeout: float = TIMEOUT) -> Event | None:
    """The first decrypted event matching `predicate`, or None (noted) after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in await peer.messages(room_id):
            if not e.get("pending") and predicate(e):
                return e
        await asyncio.sleep(0.3)
    print(f"  (waited {timeout:.0f}s for {what}: nothing)", file=sys.stderr)
    return None


def replies_to(bot: str, event_id: str) -> Callable[[Event], bool]:
    def match(e: Event) -> bool:
        rel = (e.get("content") or {}).get("m.relates_to") or {}
        return e["sender"] == bot and (rel.get("m.in_reply_to") or {}).get("event_id") == event_id
    return match


def renewal(bot: str, request_id: str | None = None, status: str | None = None,
            after: int = 0) -> Callable[[Event], bool]:
    def match(e: Event) -> bool:
        meta = (e.get("content") or {}).get("carebot.renewal") or {}
        return (e["sender"] == bot and e.get("ts", 0) >= after and bool(meta)
                and (request_id is None or meta.get("id") == request_id)
                and (status is None or meta.get("status") == status))
    return match


async def accept_invites(side: Side, bot: str, want: int) -> None:
    """Join the bot's invites (the pair room; for the practitioner also the Space and desk)."""
    seen: set[str] = set()
    while len(seen) < want:
        room_id = await side.peer.wait_invite(timeout=60)
        await side.peer.join(room_id)
        seen.add(room_id)
    for r in await side.peer.rooms():
        if r["roomId"] not in seen:
            continue
        kind = "space" if r["isSpace"] else "desk" if "carebot.desk" in r["state"] else "pair"
        side.rooms[kind] = r["roomId"]


class Day:
    """The scenario: each step sends one message and waits for what the bot should answer."""

    def __init__(self, demo: Demo, patient: Side, doc: Side) -> None:
        self.demo, self.patient, self.doc = demo, patient, doc
        self.n = 0
        self.ids: list[str] = []  # request ids, in the order the desk announced them

    async def say(self, side: Side, room: str, body: str) -> str:
        self.n += 1
        side.steps.append((self.n, room, body))
        print(f"[{self.n:02}] {side.label} in {room}: {body}", file=sys.stderr)
        return await side.peer.send(side.rooms[room], body)

    async def answered(self, side: Side, room: str, body: str) -> Event | None:
        """Send, then wait for the bot's reply to it in the same room."""
        event_id = await self.say(side, room, body)
        return await wait_for(side.peer, side.rooms[room], replies_to(self.demo.bot, event_id), f"the answer to {body!r}")

    async def renew(self, body: str) -> str | None:
        """A renewal: the patient's answer, and the desk's notice when one is sent."""
        since = int(time.time() * 1000) - 2000
        reply = await self.answered(self.patient, "pair", body)
        meta = ((reply or {}).get("content") or {}).get("carebot.renewal") or {}
        if meta.get("status") == "pending":
            await wait_for(self.doc.peer, self.doc.rooms["desk"],
                           renewal(self.demo.bot, meta["id"], "pending", since), f"{meta['id']} in the desk")
            self.ids.append(meta["id"])
            return str(meta["id"])
        return None

    async def decide(self, room: str, body: str, request_id: str, status: str) -> None:
        since = int(time.time() * 1000) - 2000
        await self.say(self.doc, room, body)
        await wait_for(self.patient.peer, self.patient.rooms["pair"],
                       renewal(self.demo.bot, request_id, status, since), f"{request_id} {status} for the patient")
        # What the practitioner reads back (desk confirmation, or the answer in the pair room).
        await wait_for(self.doc.peer, self.doc.rooms[room],
                       lambda e: e["sender"] == self.demo.bot and e.get("ts", 0) >= since
                       and request_id in str((e.get("content") or {}).get("body", "")),
                       f"the practitioner's confirmation of {request_id}")

    async def run(self) -> None:
        p, d, bot = self.patient, self.doc, self.demo.bot
        await self.answered(p, "pair", "!aide")
        first = await self.renew("!renouveler Levothyrox 75")
        await self.renew("!renouveler Levotirox")  # misspelt
        await self.renew("!renouveler Doliprane 1000")  # not a treatment of hers
        await self.answered(p, "pair", "!renouvler Levothyroxine")  # misspelt command
        await self.answered(p, "pair", "!statut")
        await self.say(p, "pair", "Bonjour docteur, la fatigue va un peu mieux depuis la dernière consultation.")
        since = int(time.time() * 1000) - 2000
        await self.say(p, "pair", "J'ai une forte douleur dans la poitrine depuis ce matin")
        await wait_for(p.peer, p.rooms["pair"], lambda e: e["sender"] == bot and "carebot.emergency" in e["content"],
                       "the emergency notice")
        await wait_for(d.peer, d.rooms["desk"], lambda e: e["sender"] == bot and e.get("ts", 0) >= since
                       and "⚠" in str(e["content"].get("body", "")), "the emergency in the desk")

        await self.answered(d, "desk", "!aide")
        await self.answered(d, "desk", "!attente")
        if first:
            await self.decide("desk", f"!accepter {first} Ordonnance prête au secrétariat", first, "approved")
        second = await self.renew("!renouveler Levothyroxine 75 µg")
        if second:
            await self.decide("pair", f"!refuser {second} Il faut d'abord un bilan sanguin (TSH)", second, "denied")
        await self.answered(d, "pair", "!attente")
        await self.answered(d, "pair", "!aide")
        await self.answered(d, "desk", "!absent 24/12/2026 Je suis en congés, le Dr Durand me remplace.")
        since = int(time.time() * 1000) - 2000
        await self.say(p, "pair", "Merci docteur. Faut-il faire la prise de sang à jeun ?")
        await wait_for(p.peer, p.rooms["pair"], lambda e: e["sender"] == bot and e.get("ts", 0) >= since,
                       "the absence notice", timeout=10)
        await self.answered(d, "desk", "!retour")

        # The English commands, once.
        await self.answered(p, "pair", "!help")
        third = await self.renew("!renew Levothyroxine")
        await self.answered(p, "pair", "!status")
        await self.answered(d, "desk", "!help")
        await self.answered(d, "desk", "!pending")
        if third:
            await self.decide("desk", f"!approve {third}", third, "approved")
        fourth = await self.renew("!renew Levothyroxine 75")
        if fourth:
            await self.decide("desk", f"!deny {fourth} Please book an appointment first.", fourth, "denied")
        await self.answered(d, "desk", "!away 2026-12-24")
        await self.answered(d, "desk", "!back")
        since = int(time.time() * 1000) - 2000
        await self.say(p, "pair", "I have suicidal thoughts")
        await wait_for(p.peer, p.rooms["pair"], lambda e: e["sender"] == bot and e.get("ts", 0) >= since
                       and "carebot.emergency" in e["content"], "the English emergency notice")


# -- the transcript ---------------------------------------------------------------------------

def first_line(body: str, width: int = 90) -> str:
    line = body.split("\n", 1)[0]
    return line if len(line) <= width else line[: width - 1] + "…"


def marks(push: dict[str, Any]) -> str:
    if not push:
        return "?"
    flags = ("🔔" if push["notify"] else "·") + ("‼" if push["highlight"] else "") + ("♪" if push["sound"] else "")
    return f"{flags} {push['rule']}"


async def side_view(side: Side, demo: Demo) -> dict[str, Any]:
    rooms = await side.peer.rooms()
    names = {r["roomId"]: r["name"] for r in rooms}
    view: dict[str, Any] = {"who": side.label, "rooms": [], "timelines": {}, "server_state": {}}
    for r in rooms:
        view["rooms"].append({
            "name": r["name"], "roomId": r["roomId"], "membership": r["membership"], "isSpace": r["isSpace"],
            "children": [names.get(c, c) for c in r["children"]],
        })
    for kind, room_id in side.rooms.items():
        push = {e["eventId"]: e for e in (await side.peer.call("pushDetails", roomId=room_id))["events"]}
        rows = []
        for e in await side.peer.messages(room_id):
            c = e.get("content") or {}
            if e["type"] not in ("m.room.message",) and not e.get("decryptionError"):
                continue
            rows.append({
                "sender": push.get(e["eventId"], {}).get("senderName", e["sender"]),
                "from_bot": e["sender"] == demo.bot,
                "msgtype": c.get("msgtype"),
                "body": c.get("body") if not e.get("decryptionError") else f"[undecryptable: {e['decryptionError']}]",
                "push": push.get(e["eventId"]),
                "keys": sorted(k for k in c if k.startswith("carebot.")),
                "mentions": (c.get("m.mentions") or {}).get("user_ids", []),
            })
        view["timelines"][kind] = {"name": names.get(room_id, room_id), "events": rows}
        state = (await side.peer.call("serverState", roomId=room_id))["events"]
        view["server_state"][kind] = [
            {"type": s["type"], "state_key": s.get("state_key"), "content": s.get("content")}
            for s in state
            if s["type"] not in ("m.room.power_levels", "m.room.create", "m.room.member")
        ]
    return view


def render(view: dict[str, Any]) -> str:
    out = [f"=== {view['who']} ===", "rooms (room.name as the client computes it):"]
    for r in view["rooms"]:
        kind = "Space" if r["isSpace"] else "room"
        out.append(f"  [{r['membership']}] {kind} {r['name']!r}")
        for c in r["children"]:
            out.append(f"      child: {c!r}")
    for kind, tl in view["timelines"].items():
        out.append(f"--- {kind}: {tl['name']!r}")
        for e in tl["events"]:
            body = e["body"] or ""
            out.append(f"  {marks(e['push'])} | {e['sender']} ({e['msgtype']}) {' '.join(e['keys'])}")
            out.extend("      " + line for line in body.split("\n"))
            if e["push"] and e["push"]["notify"]:
                out.append(f"      => notification: \"{e['sender']}: {first_line(body)}\"")
    out.append("--- what the homeserver sees in clear (state, without members and power levels):")
    for kind, events in view["server_state"].items():
        for s in events:
            out.append(f"  {kind}: {s['type']} [{s['state_key']}] {json.dumps(s['content'], ensure_ascii=False)}")
    return "\n".join(out)


def summary(view: dict[str, Any]) -> str:
    """Which bot messages would notify, per room."""
    out = [f"notifications for {view['who']} from the bot:"]
    for kind, tl in view["timelines"].items():
        bot = [e for e in tl["events"] if e["from_bot"]]
        notified = [e for e in bot if e["push"] and e["push"]["notify"]]
        out.append(f"  {kind}: {len(notified)} of {len(bot)} bot messages notify")
        for e in notified:
            out.append(f"    🔔 {first_line(e['body'] or '', 70)}")
    return "\n".join(out)


async def look(d: Path) -> list[dict[str, Any]]:
    demo = Demo.read(d)
    patient = Side("patient " + demo.patient_name, await JsPeer.start("look-patient"))
    doc = Side("practitioner " + demo.practitioner_name, await JsPeer.start("look-practitioner"))
    try:
        for side, who in ((patient, demo.patient), (doc, demo.practitioner)):
            await side.peer.login(demo.url, *who, device_name=f"look-{side.label.split()[0]}")
            await side.peer.bootstrap_cross_signing(who[1])
        await asyncio.gather(accept_invites(patient, demo.bot, 1), accept_invites(doc, demo.bot, 3))
        await wait_for(patient.peer, patient.rooms["pair"], lambda e: "carebot.disclaimer" in e["content"], "the banner")
        await Day(demo, patient, doc).run()
        return [await side_view(patient, demo), await side_view(doc, demo)]
    finally:
        await patient.peer.close()
        await doc.peer.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.interop.look", description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=".dev", help="the demo's directory (make run: .dev)")
    ap.add_argument("--out", help="write the transcript here too")
    ap.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = ap.parse_args(argv)
    views = asyncio.run(look(Path(args.dir)))
    if args.json:
        text = json.dumps(views, ensure_ascii=False, indent=1)
    else:
        text = "\n\n".join([*(render(v) for v in views), *(summary(v) for v in views)])
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
