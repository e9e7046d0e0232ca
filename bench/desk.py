"""Benchmark of the practitioner desk against a throwaway Synapse, each figure next to its
baseline from the same run.

    python -m bench.desk [--pairs 1000] [--busiest 300] [--rounds 30] [--repeat 1] [--out bench/desk_results.json]

1. provision   the bot with `desk.enabled: false`, then with the desk (Spaces + desks), each on a
               fresh bot account with the same roster (--pairs pairs, 10 practitioners, one of
               them holding --busiest pairs); runs alternate (A B A B … with --repeat).
               Goal: the desk adds < 10 % to the time until the bot is ready.
2. pending     the busiest practitioner types `!attente` in their desk with --busiest requests
               pending, interleaved with the same text to a bare nio echo bot, same client.
               Goal: p50 <= 1.5 x the echo round trip.

Bots run as child processes (`python -m bot.cli run`, `python -m bench.echo_bot`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import secrets
import sqlite3
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from bench.clients import REPO, Child, Patient
from bench.run import MEDICATION, execute, machine, say
from bench.stats import figure, p50_p95, samples_ms
from bot.devserver import Homeserver
from bot.matrix.rooms import MEGOLM

PRACTITIONERS = 10


class DeskBench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.password = secrets.token_hex(12)
        self.hs = Homeserver(tmp / "hs", extra_config={"bcrypt_rounds": 4})
        self.figures: list[dict[str, Any]] = []
        self.info: dict[str, Any] = {}
        self.children: list[Child] = []

    def fig(self, name: str, value: float | None, unit: str, goal: str, met: bool | None, **extra: Any) -> None:
        self.figures.append(figure(name, value, unit, goal, met, **extra))

    def practitioner_of(self, i: int) -> int:
        return 0 if i < self.args.busiest else 1 + i % (PRACTITIONERS - 1)

    def roster(self) -> dict[str, Any]:
        last = (dt.date.today() - dt.timedelta(days=30)).isoformat()
        return {
            "practitioners": [
                {"id": f"dr-{j}", "matrix_id": self.hs.user_id(f"dr{j}"), "display_name": f"Dr Bench {j}", "messaging": True}
                for j in range(PRACTITIONERS)
            ],
            "patients": [
                {"id": f"pat-{i:05d}", "matrix_id": self.hs.user_id(f"pat{i:05d}"), "display_name": f"Patient {i}",
                 "care": [{"practitioner": f"dr-{self.practitioner_of(i)}", "last_consultation": last,
                           "treatments": [{"name": MEDICATION, "long_term": True}]}]}
                for i in range(self.args.pairs)
            ],
        }

    def register_all(self) -> None:
        runs = 2 * self.args.repeat
        names = [f"deskbot{k}" for k in range(runs)] + ["echobot"] + [f"dr{j}" for j in range(PRACTITIONERS)]
        names += [f"pat{i:05d}" for i in range(self.args.pairs)]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(6) as ex:
            list(ex.map(lambda n: self.hs.register(n, self.password), names))
        say(f"registered {len(names)} accounts in {time.perf_counter() - t0:.1f} s")

    def bot_dir(self, k: int, desk: bool) -> Path:
        d = self.tmp / f"bot{k}"
        d.mkdir(exist_ok=True)
        (d / "bot-password").write_text(self.password)
        (d / "roster.yaml").write_text(yaml.safe_dump(self.roster(), allow_unicode=True, sort_keys=False))
        config = {
            "homeserver": {"url": self.hs.url},
            "bot": {"user_id": self.hs.user_id(f"deskbot{k}"), "password_file": "bot-password"},
            "storage": {"path": "data"},
            "roster": {"path": "roster.yaml"},
            "policies": {"path": str(REPO / "policies")},
            "sync": {"timeout_ms": 30000},
            "log": {"format": "json", "level": "info"},
            "limits": {"flood_messages_per_minute": 100000},
            "rooms": {"max_concurrent_creations": self.args.concurrency},
            "desk": {"enabled": desk},
        }
        (d / "config.yaml").write_text(yaml.safe_dump(config))
        return d

    async def provision(self) -> Child:
        """Alternate runs without and with the desk; the last bot (with the desk) keeps running."""
        times: dict[bool, list[float]] = {False: [], True: []}
        last: Child | None = None
        for k in range(2 * self.args.repeat):
            desk = k % 2 == 1
            d = self.bot_dir(k, desk)
            child = Child(["-m", "bot.cli", "run", "--config", str(d / "config.yaml")], "carebot.ready", log=d / "bot.log")
            self.children.append(child)
            await child.start()
            seconds = await child.wait_ready(self.args.ready_timeout)
            times[desk].append(seconds)
            say(f"run {k}: desk={desk} ready in {seconds:.1f} s ({child.counts.get('room.created', 0)} rooms, "
                f"{child.counts.get('desk.created', 0)} desks, {child.counts.get('space.created', 0)} Spaces)")
            if last is not None:
                await last.stop()
            last = child
        assert last is not None
        a, b = statistics.median(times[False]), statistics.median(times[True])  # runs alternate; spread shown
        self.fig("desk.provision_without_s", a, "s", "baseline", None, runs=[round(x, 2) for x in times[False]])
        self.fig("desk.provision_with_s", b, "s", "adds < 10 % to provisioning", b <= 1.10 * a,
                 runs=[round(x, 2) for x in times[True]], ratio=round(b / a, 3), pairs=self.args.pairs)
        self.bot_data = self.tmp / f"bot{2 * self.args.repeat - 1}" / "data" / "carebot.db"
        return last

    def fill_pending(self) -> str:
        """--busiest pending requests for dr-0, written in the running bot's database (WAL)."""
        db = sqlite3.connect(self.bot_data, timeout=30)
        try:
            rooms = db.execute("SELECT room_id, patient_id FROM rooms WHERE practitioner_id = 'dr-0'").fetchall()
            now = time.time()
            with db:
                for n, (room_id, patient_id) in enumerate(rooms):
                    db.execute(
                        "INSERT INTO requests (event_id, room_id, patient_id, practitioner_id, medication, medication_key, "
                        "status, rules, created_at) VALUES (?, ?, ?, 'dr-0', ?, ?, 'pending', '[]', ?)",
                        (f"$bench{n}", room_id, patient_id, MEDICATION, "levothyroxine 75 µg", now - 3600 * (len(rooms) - n)),
                    )
            (desk,) = db.execute("SELECT desk_room_id FROM desks WHERE practitioner_id = 'dr-0'").fetchone()
        finally:
            db.close()
        self.info["pending_for_busiest"] = len(rooms)
        return str(desk)

    async def pending_latency(self, bot: Child) -> None:
        echo = Child(["-m", "bench.echo_bot", "--homeserver", self.hs.url, "--user", self.hs.user_id("echobot"),
                      "--store", str(self.tmp / "echo")], "echo.ready", env={"ECHO_PASSWORD": self.password}, log=self.tmp / "echo.log")
        self.children.append(echo)
        await echo.start()
        await echo.wait_ready(60)
        desk = self.fill_pending()
        doc = Patient(self.hs.url, self.hs.user_id("dr0"), self.password, self.tmp / "clients" / "dr0", {self.hs.user_id("echobot")})
        await doc.start()
        try:
            resp = await doc.client.room_create(invite=[self.hs.user_id("echobot")], initial_state=[
                {"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}}])
            echo_room = resp.room_id
            await doc.client.join(desk)
            await doc.wait(lambda: desk in doc.client.rooms and echo_room in doc.client.rooms, 60)
            for room in (desk, echo_room):  # warm-up: Olm sessions and room keys both ways
                for attempt in range(5):
                    try:
                        await doc.roundtrip(room, "!attente", timeout=20)
                        break
                    except asyncio.TimeoutError:
                        say(f"warm-up retry {attempt + 1} in {room}")
            desk_l: list[float] = []
            echo_l: list[float] = []
            for _ in range(self.args.rounds):  # interleaved, so drift hits both alike
                desk_l.append(await doc.roundtrip(desk, "!attente"))
                echo_l.append(await doc.roundtrip(echo_room, "!attente"))
        finally:
            await doc.close()
        (d50, d95), (e50, e95) = p50_p95(desk_l), p50_p95(echo_l)
        self.fig("desk.echo_p50", e50 * 1000, "ms", "baseline", None, p95_ms=round(e95 * 1000, 1))
        self.fig("desk.pending_p50", d50 * 1000, "ms", "p50 <= 1.5 x echo", d50 <= 1.5 * e50, p95_ms=round(d95 * 1000, 1),
                 ratio=round(d50 / e50, 3), pending=self.info.get("pending_for_busiest"))
        self.info["samples_ms"] = samples_ms(desk=desk_l, echo=echo_l)
        say(f"!attente p50 {d50 * 1000:.0f} ms / echo {e50 * 1000:.0f} ms")

    async def run(self) -> None:
        self.hs.start()
        try:
            say(f"Synapse on {self.hs.url}")
            self.register_all()
            bot = await self.provision()
            await self.pending_latency(bot)
        finally:
            for child in self.children:
                await child.stop()
            self.hs.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--busiest", type=int, default=300, help="pairs (and pending requests) of the busiest practitioner")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=1, help="provisioning runs per variant (alternated)")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--ready-timeout", type=float, default=900)
    ap.add_argument("--out", default=str(REPO / "bench" / "desk_results.json"))
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    bench, error = execute(lambda tmp: DeskBench(args, tmp), "carebot-desk-bench-", keep=args.keep)
    result = {"machine": machine(), "args": vars(args), "figures": bench.figures, "info": bench.info, "error": error}
    Path(args.out).write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    for f in bench.figures:
        met = "-" if f["met"] is None else ("yes" if f["met"] else "NO")
        print(f"{f['name']:28} {f['value']} {f['unit']:4} goal: {f['goal']:32} met: {met}")
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main())
