"""carebot benchmark against a throwaway Synapse, each figure next to a baseline of the same run.

    python -m bench.run [--pairs 1000] [--patients 50] [--rounds 30] [--repeats 3] [--out bench/results.json]
    python -m bench.run --pairs 10000      # the 10,000-pair figures (about an hour of room creation)

1. provision   --pairs verified pairs -> bot ready with every room, vs raw createRoom with the
               same bodies and concurrency, sent as the echo bot's account (so that the echo
               bot ends up in as many rooms as carebot); goal: time ratio <= 1.25
2. latency     p50/p95 of encrypted `!help` round trips, carebot vs the echo bot, interleaved
3. throughput  N patients send `!renouveler …` at once; carebot vs the echo bot, --repeats
               times, interleaved (the order alternates), median and spread reported
4. restart     bot stopped, a patient writes, bot started: time until that command is answered
5. memory      peak RSS (VmHWM) of the bot process with --pairs rooms
6. reconcile   a second reconciliation (in-process) must create nothing, in < 2 s

Both bots run as child processes (`python -m bot.cli run`, `python -m bench.echo_bot`). The echo
bot gets every advantage carebot has: the same sync filter, as many rooms, and its replies
sent rooms-in-parallel with the same width as carebot's outbox (bench/fair.py).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import platform
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path
from collections.abc import Callable
from typing import Any

import yaml
from nio import AsyncClient, LoginResponse, RoomCreateResponse
from nio.api import Api

from bench.clients import REPO, Child, Patient
from bench.stats import figure, p50_p95, pct, samples_ms
from bot.care.texts import Texts
from bot.devserver import Homeserver
from bot.matrix.rooms import MEGOLM, create_room_body

MEDICATION = "Levothyroxine 75 µg"
PRACTITIONERS = 10


def commit() -> str:
    """The commit measured (with '+dirty' when the tree has changes): README figures name it."""
    import subprocess

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True, check=False).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def say(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    mem = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) // 1024
    return {
        "nproc": os.cpu_count(),
        "ram_mb": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "synapse": version("matrix-synapse"),
        "matrix_nio": version("matrix-nio"),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.n_pairs = max(args.pairs, args.patients)
        self.n_prac = min(PRACTITIONERS, self.n_pairs)
        self.password = secrets.token_hex(12)
        self.hs = Homeserver(tmp / "hs", extra_config={"bcrypt_rounds": 4})
        self.figures: list[dict[str, Any]] = []
        self.info: dict[str, Any] = {}
        self.patients: list[Patient] = []
        self.bot: Child | None = None
        self.echo: Child | None = None

    # -- helpers ----------------------------------------------------------------------------
    def fig(self, name: str, value: float | None, unit: str, goal: str, met: bool | None, **extra: Any) -> None:
        self.figures.append(figure(name, value, unit, goal, met, **extra))

    def uid(self, local: str) -> str:
        return self.hs.user_id(local)

    def patient_local(self, i: int) -> str:
        return f"pat{i:05d}"

    def practitioner_of(self, i: int) -> int:
        return 0 if i < self.args.patients else i % self.n_prac

    def roster(self) -> dict[str, Any]:
        last = (dt.date.today() - dt.timedelta(days=30)).isoformat()
        return {
            "practitioners": [
                {"id": f"dr-{j}", "matrix_id": self.uid(f"dr{j}"), "display_name": f"Dr Bench {j}", "messaging": True}
                for j in range(self.n_prac)
            ],
            "patients": [
                {"id": f"pat-{i:05d}", "matrix_id": self.uid(self.patient_local(i)), "display_name": f"Patient {i}",
                 "care": [{"practitioner": f"dr-{self.practitioner_of(i)}", "last_consultation": last,
                           "treatments": [{"name": MEDICATION, "long_term": True}]}]}
                for i in range(self.n_pairs)
            ],
        }

    def write_bot_config(self) -> Path:
        d = self.tmp / "bot"
        d.mkdir(exist_ok=True)
        (d / "bot-password").write_text(self.password)
        (d / "roster.yaml").write_text(yaml.safe_dump(self.roster(), allow_unicode=True, sort_keys=False))
        config = {
            "homeserver": {"url": self.hs.url},
            "bot": {"user_id": self.uid("carebot"), "password_file": "bot-password", "device_name": "carebot"},
            "storage": {"path": "data"},
            "roster": {"path": "roster.yaml"},
            "policies": {"path": str(REPO / "policies")},
            "locale": "fr",
            "sync": {"timeout_ms": 30000},
            # info, not warning: `carebot.ready` is logged at info level.
            "log": {"format": "json", "level": "info"},
            # One patient sends --rounds commands in a minute: keep the flood guard out of the way.
            "limits": {"flood_messages_per_minute": 100000},
            "rooms": {"max_concurrent_creations": self.args.concurrency},
        }
        path = d / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def new_bot(self) -> Child:
        args = ["-m", "bot.cli", "run", "--config", str(self.tmp / "bot" / "config.yaml")]
        if self.args.profile_bot:  # cProfile the bot process; written when it stops (SIGTERM)
            self.bot_runs = getattr(self, "bot_runs", 0) + 1
            out = Path(self.args.profile_bot).with_suffix(f".{self.bot_runs}.prof")
            args = ["-m", "cProfile", "-o", str(out.resolve())] + args
        return Child(args, "carebot.ready", log=self.tmp / "bot.log")

    # -- steps ------------------------------------------------------------------------------
    def register_all(self) -> None:
        names = ["carebot", "echobot"] + [f"dr{j}" for j in range(self.n_prac)]
        names += [self.patient_local(i) for i in range(self.n_pairs)]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(6) as ex:
            list(ex.map(lambda n: self.hs.register(n, self.password), names))
        self.info["accounts_registered"] = len(names)
        self.info["registration_s"] = round(time.perf_counter() - t0, 2)
        say(f"registered {len(names)} accounts in {self.info['registration_s']} s")

    async def start_echo(self) -> None:
        self.echo = Child(["-m", "bench.echo_bot", "--homeserver", self.hs.url, "--user", self.uid("echobot"),
                           "--store", str(self.tmp / "echo")], "echo.ready",
                          env={"ECHO_PASSWORD": self.password}, log=self.tmp / "echo.log")
        await self.echo.start()
        await self.echo.wait_ready(60)

    async def start_patients(self) -> None:
        # Patients join carebot's invites only; the echo bot's pair-like rooms (raw_creation)
        # keep them invited, as most of carebot's pair rooms keep theirs.
        join_from = {self.uid("carebot")}
        sem = asyncio.Semaphore(8)
        echo = self.uid("echobot")

        async def one(i: int) -> Patient:
            async with sem:
                p = Patient(self.hs.url, self.uid(self.patient_local(i)), self.password,
                            self.tmp / "clients" / str(i), join_from)
                await p.start()
                resp = await p.client.room_create(
                    invite=[echo],
                    initial_state=[{"type": "m.room.encryption", "state_key": "", "content": {"algorithm": MEGOLM}}],
                )
                p.echo_room = resp.room_id  # type: ignore[attr-defined]
                return p

        self.patients = list(await asyncio.gather(*(one(i) for i in range(self.args.patients))))

    async def raw_creation(self) -> None:
        """Baseline: the same createRoom bodies, sent by a plain client with the same concurrency.

        It logs in as the echo bot (a second device, logged out afterwards): the rooms it makes
        are the echo bot's share of rooms, so that both bots sync as many rooms.
        """
        raw = AsyncClient(self.hs.url, self.uid("echobot"))
        resp = await raw.login(self.password, device_name="raw-create")
        assert isinstance(resp, LoginResponse), resp
        caps = await raw.send("GET", Api._build_path(["capabilities"]),
                              headers={"Authorization": f"Bearer {raw.access_token}"})
        room_version = str((await caps.json())["capabilities"]["m.room_versions"]["default"])
        texts = Texts.load(REPO / "policies")
        sem = asyncio.Semaphore(self.args.concurrency)
        failed = 0

        async def one(i: int) -> None:
            nonlocal failed
            j = self.practitioner_of(i)
            body = create_room_body(
                bot=raw.user_id, patient_mxid=self.uid(self.patient_local(i)), practitioner_mxid=self.uid(f"dr{j}"),
                patient_id=f"pat-{i:05d}", practitioner_id=f"dr-{j}",
                name=texts.get("room_name", "fr", practitioner=f"Dr Bench {j}"), topic=texts.get("topic", "fr"),
                room_version=room_version,
            )
            async with sem:
                r = await raw._send(RoomCreateResponse, "POST",  # noqa: SLF001 - as the bot does
                                    Api._build_path(["createRoom"], {"access_token": raw.access_token}),
                                    Api.to_json(body))
            if not isinstance(r, RoomCreateResponse):
                failed += 1

        # Every pair up to 1,000 (the echo bot needs as many rooms as carebot); past that a
        # sample (--raw-sample), the rate being what is compared.
        sample = self.args.raw_sample if self.args.raw_sample is not None else min(self.n_pairs, 1000)
        n = min(self.n_pairs, sample) if sample > 0 else self.n_pairs
        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        self.raw_n = n
        self.raw_s = (time.perf_counter() - t0) * self.n_pairs / n  # extrapolated to --pairs
        self.info["raw_create_failed"] = failed
        self.info["room_version"] = room_version
        self.info["echo_rooms"] = n + len(self.patients)
        await raw.logout()
        await raw.close()
        say(f"raw createRoom x{n}: {self.raw_s * n / self.n_pairs:.1f} s ({failed} failed)")

    async def provision(self) -> None:
        self.write_bot_config()
        self.bot = self.new_bot()
        await self.bot.start()
        bot_s = await self.bot.wait_ready(self.args.ready_timeout)
        created = self.bot.counts.get("room.created", 0)
        first = self.bot.first.get("room.created")
        span = (self.bot.ready_at - first) if first else None
        say(f"bot ready with {created} new rooms in {bot_s:.1f} s (creation span {span or 0:.1f} s)")
        raw_rate, bot_rate = self.n_pairs / self.raw_s, self.n_pairs / bot_s
        ratio = bot_s / self.raw_s
        self.fig("provision.raw_rooms_per_s", raw_rate, "rooms/s", "baseline", None,
                 rooms_timed=self.raw_n, seconds_for_pairs=round(self.raw_s, 2), concurrency=self.args.concurrency)
        self.fig("provision.bot_rooms_per_s", bot_rate, "rooms/s", "time ratio bot/raw createRoom <= 1.25",
                 ratio <= 1.25, seconds=round(bot_s, 2), rooms_created=created,
                 creation_span_s=None if span is None else round(span, 2), ratio_time=round(ratio, 3))
        # The banner of a room goes out when its patient joins (see README), so nothing is
        # queued for the thousand rooms whose patients stay away.

    async def wait_rooms(self) -> None:
        bot, echo = self.uid("carebot"), self.uid("echobot")

        def echo_joined(p: Patient) -> bool:
            room = p.client.rooms.get(p.echo_room)  # type: ignore[attr-defined]
            return room is not None and echo in room.users and echo not in room.invited_users

        await asyncio.gather(*(p.wait(lambda p=p: p.room_invited_by(bot) is not None and echo_joined(p), 120)
                               for p in self.patients))
        for p in self.patients:
            p.pair_room = p.room_invited_by(bot)  # type: ignore[attr-defined]

    async def warmup(self) -> None:
        """Olm sessions and room keys in both directions, for every patient, in both rooms."""
        async def one(p: Patient, room: str, body: str) -> None:
            for attempt in range(3):
                try:
                    await p.roundtrip(room, body, timeout=20)
                    return
                except asyncio.TimeoutError:
                    say(f"warm-up retry {attempt + 1} for {p.user_id} in {room}")
            raise RuntimeError(f"no reply for {p.user_id} in {room}")

        t0 = time.perf_counter()
        await asyncio.gather(*(one(p, p.pair_room, "!aide") for p in self.patients))  # type: ignore[attr-defined]
        await asyncio.gather(*(one(p, p.echo_room, "warm-up") for p in self.patients))  # type: ignore[attr-defined]
        say(f"warm-up done in {time.perf_counter() - t0:.1f} s")

    async def latency(self) -> None:
        p = self.patients[0]
        bot_l: list[float] = []
        echo_l: list[float] = []
        for _ in range(self.args.rounds):  # interleaved, so drift hits both alike
            bot_l.append(await p.roundtrip(p.pair_room, "!help"))  # type: ignore[attr-defined]
            echo_l.append(await p.roundtrip(p.echo_room, "!help"))  # type: ignore[attr-defined]
        (b50, b95), (e50, e95) = p50_p95(bot_l), p50_p95(echo_l)
        spread = {"p25_ms": lambda v: round(pct(v, 25) * 1000, 1), "p75_ms": lambda v: round(pct(v, 75) * 1000, 1)}
        self.fig("latency.echo_p50", e50 * 1000, "ms", "baseline", None, p95_ms=round(e95 * 1000, 1),
                 **{k: f(echo_l) for k, f in spread.items()}, rooms=self.info.get("echo_rooms"))
        self.fig("latency.bot_p50", b50 * 1000, "ms", "p50 ratio bot/echo <= 1.10", b50 / e50 <= 1.10,
                 p95_ms=round(b95 * 1000, 1), ratio=round(b50 / e50, 3), **{k: f(bot_l) for k, f in spread.items()},
                 rooms=self.n_pairs)
        self.info["latency_samples_ms"] = samples_ms(bot=bot_l, echo=echo_l)
        say(f"latency p50 bot {b50 * 1000:.0f} ms / echo {e50 * 1000:.0f} ms")

    async def burst(self, room_attr: str, body: str) -> tuple[float, float, float, int]:
        t0 = time.perf_counter()

        async def one(p: Patient) -> float | None:
            try:
                return await p.roundtrip(getattr(p, room_attr), body, timeout=120)
            except asyncio.TimeoutError:
                return None

        res = await asyncio.gather(*(one(p) for p in self.patients))
        ok = [r for r in res if r is not None]
        wall = time.perf_counter() - t0
        return len(ok) / wall, pct(ok, 50), pct(ok, 95), len(res) - len(ok)

    async def throughput(self) -> None:
        """--repeats bursts per bot, interleaved; the order alternates so neither always goes first.

        carebot's first burst creates pending requests; later ones are answered as duplicates
        (ineligible): still checked, recorded, audited and answered.
        """
        body = f"!renouveler {MEDICATION}"
        runs: dict[str, list[tuple[float, float, float, int]]] = {"echo_room": [], "pair_room": []}
        for r in range(self.args.repeats):
            order = ("echo_room", "pair_room") if r % 2 == 0 else ("pair_room", "echo_room")
            for room in order:
                runs[room].append(await self.burst(room, body))
                await asyncio.sleep(1)
        n = len(self.patients)

        def summary(rs: list[tuple[float, float, float, int]]) -> dict[str, Any]:
            p95s = [x[2] * 1000 for x in rs]
            rates = [x[0] for x in rs]
            return {"p95_ms": statistics.median(p95s), "p95_ms_runs": [round(v, 1) for v in p95s],
                    "rate": statistics.median(rates), "rate_runs": [round(v, 2) for v in rates],
                    "p50_ms": statistics.median(x[1] * 1000 for x in rs), "unanswered": sum(x[3] for x in rs)}

        e, b = summary(runs["echo_room"]), summary(runs["pair_room"])
        ratio = b["p95_ms"] / e["p95_ms"]
        self.fig("throughput.echo_p95", e["p95_ms"], "ms", "baseline (median of runs)", None,
                 requests_per_s=round(e["rate"], 2), p95_runs_ms=e["p95_ms_runs"], rate_runs=e["rate_runs"],
                 p50_ms=round(e["p50_ms"], 1), unanswered=e["unanswered"], patients=n, repeats=self.args.repeats)
        self.fig("throughput.bot_p95", b["p95_ms"], "ms", "p95 ratio bot/echo <= 1.25 (medians)",
                 ratio <= 1.25 and b["unanswered"] == 0, requests_per_s=round(b["rate"], 2),
                 p95_runs_ms=b["p95_ms_runs"], rate_runs=b["rate_runs"], p50_ms=round(b["p50_ms"], 1),
                 unanswered=b["unanswered"], patients=n, ratio=round(ratio, 3), repeats=self.args.repeats)
        say(f"throughput bot {b['rate']:.1f} req/s p95 {b['p95_ms']:.0f} ms {b['p95_ms_runs']} / echo "
            f"{e['rate']:.1f} req/s p95 {e['p95_ms']:.0f} ms {e['p95_ms_runs']}")

    async def restart(self) -> None:
        assert self.bot is not None
        rss = self.bot.peak_rss_mb()
        await self.bot.stop()
        p = self.patients[0]
        eid = await p.send(p.pair_room, "!aide")  # type: ignore[attr-defined]
        self.bot = self.new_bot()
        t0 = time.perf_counter()
        await self.bot.start()
        try:
            answered = await p.wait_reply(eid, 60) - t0
        except asyncio.TimeoutError:
            answered = None
        ready = await self.bot.wait_ready(120)
        self.fig("restart.answered_s", answered, "s", "< 5 s", answered is not None and answered < 5,
                 ready_s=round(ready, 2), rooms=self.n_pairs)
        say(f"restart: ready {ready:.2f} s, command answered {answered} s")
        await asyncio.sleep(2)
        rss2 = self.bot.peak_rss_mb()
        peak = max(x for x in (rss, rss2) if x is not None)
        assert self.echo is not None
        limit = 250 if self.n_pairs <= 1000 else 400
        self.fig("memory.bot_peak_rss", peak, "MB", f"< {limit} MB", peak < limit,
                 first_run_mb=rss, after_restart_mb=rss2, echo_peak_mb=self.echo.peak_rss_mb(), rooms=self.n_pairs)
        await self.bot.stop()
        self.bot = None

    async def reconcile_again(self) -> None:
        """In-process: start the bot on the same storage, then `await bot.reconcile()` once more."""
        from bot.config import load_config, resolve_password
        from bot.logs import setup_logging
        from bot.runtime import CareBot
        from bot.runtime.reconcile import Reconciler

        setup_logging("json", "warning")
        config = load_config(self.tmp / "bot" / "config.yaml")
        password = resolve_password(config)
        bot = CareBot(config, lambda: password)
        creates = 0
        times: list[float] = []
        orig_create, orig_reconcile = Reconciler.create_room, Reconciler.reconcile

        async def counting(reconciler: Reconciler, pair: Any) -> None:
            nonlocal creates
            creates += 1
            await orig_create(reconciler, pair)

        async def timed(reconciler: Reconciler) -> None:
            t = time.perf_counter()
            await orig_reconcile(reconciler)
            times.append(time.perf_counter() - t)

        # The reconciler is built inside run(): count and time it where it is defined.
        Reconciler.create_room = counting  # type: ignore[method-assign]
        Reconciler.reconcile = timed  # type: ignore[method-assign]
        stop = asyncio.Event()
        task = asyncio.create_task(bot.run(stop))
        ready = asyncio.create_task(bot.ready.wait())
        await asyncio.wait({task, ready}, timeout=120, return_when=asyncio.FIRST_COMPLETED)
        if not bot.ready.is_set():
            ready.cancel()
            stop.set()
            await task
            raise RuntimeError("in-process bot not ready")
        assert bot.store is not None
        before = len(await bot.store.rooms())
        if self.args.profile_reconcile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            await bot.reconcile()
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(15)
        else:
            await bot.reconcile()
        after = len(await bot.store.rooms())
        stop.set()
        await asyncio.wait_for(task, 60)
        Reconciler.create_room, Reconciler.reconcile = orig_create, orig_reconcile  # type: ignore[method-assign]
        ok = creates == 0 and after == before and times[-1] < 2.0
        self.fig("provision.second_reconcile_s", times[-1], "s", "< 2 s and no createRoom", ok,
                 create_room_calls=creates, rooms_before=before, rooms_after=after,
                 at_startup_s=round(times[0], 3))
        say(f"second reconcile {times[-1]:.3f} s (at start-up {times[0]:.3f} s), createRoom calls {creates}")

    async def shut_down(self) -> None:
        """Both bots stopped, the patients' clients closed, Synapse stopped."""
        for child in (self.bot, self.echo):
            if child is not None:
                await child.stop()
        for p in self.patients:
            await p.close()
        self.hs.stop()

    async def run(self) -> None:
        t_all = time.perf_counter()
        self.hs.start()
        try:
            say(f"Synapse on {self.hs.url}")
            self.register_all()
            await self.start_echo()
            await self.start_patients()
            await self.raw_creation()
            await self.provision()
            await self.wait_rooms()
            await self.warmup()
            await self.latency()
            await self.throughput()
            await self.restart()
            await self.reconcile_again()
        finally:
            await self.shut_down()
        total = time.perf_counter() - t_all
        if self.n_pairs <= 1000:
            self.fig("bench.total_s", total, "s", "< 600 s", total < 600)
        else:  # room creation alone takes about an hour at 10,000 pairs
            self.fig("bench.total_s", total, "s", "(no goal past 1,000 pairs)", None)


def table(figures: list[dict[str, Any]]) -> str:
    rows = [("figure", "value", "goal", "met", "details")]
    for f in figures:
        extra = {k: v for k, v in f.items() if k not in ("name", "value", "unit", "goal", "met")}
        met = "-" if f["met"] is None else ("yes" if f["met"] else "NO")
        rows.append((f["name"], f"{f['value']} {f['unit']}", f["goal"], met,
                     ", ".join(f"{k}={v}" for k, v in extra.items())))
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join(" | ".join(r[i].ljust(w[i]) for i in range(4)) + " | " + r[4] for r in rows)


def execute(make: Callable[[Path], Any], prefix: str, keep: bool) -> tuple[Any, str | None]:
    """Build a bench in a fresh temp dir and run it, libraries quiet: (the bench, the error that
    stopped it or None). What was measured before an error is kept; so is the temp dir, then."""
    logging.basicConfig(level=logging.ERROR)
    for name in ("nio", "peewee", "aiohttp"):
        logging.getLogger(name).setLevel(logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    bench = make(tmp)
    error = None
    try:
        asyncio.run(bench.run())
    except Exception as e:  # noqa: BLE001 - still write what was measured
        error = f"{type(e).__name__}: {e}"
        say(f"FAILED: {error}")
    finally:
        if keep or error:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return bench, error


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--patients", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--concurrency", type=int, default=4, help="rooms.max_concurrent_creations (and raw baseline)")
    ap.add_argument("--raw-sample", type=int, default=None,
                    help="rooms created by the raw baseline (default: --pairs up to 1,000; 0 = --pairs)")
    ap.add_argument("--repeats", type=int, default=3, help="throughput bursts per bot, interleaved")
    ap.add_argument("--ready-timeout", type=float, default=None,
                    help="seconds for the first start with --pairs rooms (default: 480, or 0.6 s a pair)")
    ap.add_argument("--out", default=str(REPO / "bench" / "results.json"))
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, databases)")
    ap.add_argument("--profile-bot", metavar="PATH", help="run the bot under cProfile, stats to PATH.<n>.prof")
    ap.add_argument("--profile-reconcile", action="store_true", help="cProfile the second reconcile")
    args = ap.parse_args()
    if args.ready_timeout is None:
        args.ready_timeout = max(480.0, 0.6 * args.pairs)
    bench, error = execute(lambda tmp: Bench(args, tmp), "carebot-bench-", keep=args.keep)
    result = {
        "machine": machine(),
        "params": {"pairs": bench.n_pairs, "patients": args.patients, "rounds": args.rounds,
                   "practitioners": bench.n_prac, "concurrency": args.concurrency, "repeats": args.repeats},
        "commit": commit(),
        "figures": bench.figures,
        "info": bench.info,
        "error": error,
    }
    Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(table(bench.figures))
    print(f"written {args.out}" + (f" — ERROR: {error}" if error else ""))
    return 1 if error else 0


if __name__ == "__main__":
    raise SystemExit(main())
