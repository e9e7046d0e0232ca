"""Provisioning alone, taken apart: where carebot's time goes next to raw `createRoom`.

    python -m bench.provision [--pairs 1000] [--patients 50] [--order raw,bot] [--out FILE]

The same two phases as `bench.run` phase 1 (same Synapse set-up, accounts, patients, bodies and
concurrency; `--order bot,raw` runs carebot first), then stops. Besides the time ratio it
reports, per phase, the CPU seconds of Synapse and of the clients (the bot, or the echo bot and
the raw client), the requests Synapse served (from its access log: count, CPU, wall), and
carebot's own timeline from its log: start-up, desk rooms, pair rooms, Spaces. CPU seconds
hardly move with other load on the machine; wall time does, so compare the CPU figures
when the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import yaml

from bench.run import Bench, commit, execute, machine, say
from bot.devserver import Homeserver

ACCESS = re.compile(
    r"^(\S+ \S+) INFO synapse\.access\.http\.\d+ .*? \{([^}]*)\} Processed request: ([\d.]+)sec/[\d.]+sec "
    r"ru=\(([\d.]+)sec, ([\d.]+)sec\) .*?\"(\S+) (\S+)"
)


class AccessLoggedHomeserver(Homeserver):
    """Synapse with its access log (one line per request, with its CPU) in homeserver.log."""

    def write_config(self) -> None:
        super().write_config()
        path = self.data_dir / "log.yaml"
        config = yaml.safe_load(path.read_text())
        config["loggers"] = {"synapse.access": {"level": "INFO"}}
        path.write_text(yaml.safe_dump(config))


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def request_kind(user: str, method: str, path: str) -> str:
    """`@patN POST /rooms/R/send/m.room.encrypted/X`: who (numbers folded) and what."""
    who = re.sub(r"\d+", "N", user.split(":")[0])
    path = re.sub(r"^/_matrix/client/(v3|r0|unstable)", "", path.split("?")[0])
    path = re.sub(r"/rooms/[^/]+", "/rooms/R", path)
    path = re.sub(r"/(send|sendToDevice)/([^/]+)/[^/]+", r"/\1/\2/X", path)
    path = re.sub(r"/state/([^/]+)/[^/]*", r"/state/\1", path)
    path = re.sub(r"/(join|invite|leave|account_data)/.*", r"/\1", path)
    return f"{who} {method} {path}"


def requests_between(log: Path, start: float, end: float) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = collections.defaultdict(lambda: {"n": 0, "cpu_s": 0.0, "wall_s": 0.0})
    for line in log.read_text(errors="replace").splitlines():
        m = ACCESS.match(line)
        if not m:
            continue
        t = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if start <= t <= end:
            row = out[request_kind(m.group(2), m.group(6), m.group(7))]
            row["n"] += 1
            row["cpu_s"] += float(m.group(4)) + float(m.group(5))
            row["wall_s"] += float(m.group(3))
    return {k: {f: round(v, 2) for f, v in row.items()} for k, row in sorted(out.items(), key=lambda kv: -kv[1]["cpu_s"])}


def bot_timeline(log: Path, spawned: float) -> dict[str, float]:
    """Seconds from the bot's spawn: first/last desk, pair room and Space created, ready."""
    firsts: dict[str, float] = {}
    lasts: dict[str, float] = {}
    for line in log.read_text(errors="replace").splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        name = ev.get("event")
        if name in ("desk.created", "room.created", "space.created", "carebot.ready") and "timestamp" in ev:
            t = dt.datetime.fromisoformat(ev["timestamp"].replace("Z", "+00:00")).timestamp() - spawned
            firsts.setdefault(name, t)
            lasts[name] = t
    return {f"{k}.{edge}": round(v, 2) for edge, d in (("first", firsts), ("last", lasts)) for k, v in d.items()}


class Provision(Bench):
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        super().__init__(args, tmp)
        self.hs = AccessLoggedHomeserver(tmp / "hs", extra_config={"bcrypt_rounds": 4})

    def cpus(self) -> dict[str, float]:
        t = os.times()
        return {
            "synapse": cpu_seconds(self.hs.proc.pid if self.hs.proc else None),
            "echo_bot": cpu_seconds(self.echo.pid if self.echo else None),
            "bot": cpu_seconds(self.bot.pid if self.bot and self.bot.proc else None),
            "bench_process": t.user + t.system,  # the raw client and the patients
        }

    async def run(self) -> None:
        self.hs.start()
        try:
            self.register_all()
            await self.start_echo()
            await self.start_patients()
            phases: dict[str, Any] = {}
            for phase in self.args.order.split(","):
                await asyncio.sleep(3)  # the last phase's syncs settle
                t0, c0 = time.time(), self.cpus()
                if phase == "raw":
                    await self.raw_creation()
                else:
                    if not hasattr(self, "raw_s"):  # carebot first: its ratio is worked out below
                        self.raw_s, self.raw_n = float("nan"), 0
                    await self.provision()
                    spawned = time.time() - (time.perf_counter() - self.bot.started_at)  # type: ignore[union-attr]
                t1, c1 = time.time(), self.cpus()
                phases[phase] = {
                    "seconds": round(t1 - t0, 2),
                    "cpu_s": {k: round(c1[k] - c0.get(k, 0.0), 2) for k in c1},
                    "requests": requests_between(self.tmp / "hs" / "homeserver.log", t0, t1),
                }
            phases["bot"]["seconds"] = round(self.bot.ready_at - self.bot.started_at, 2)  # type: ignore[union-attr]
            phases["bot"]["timeline_s"] = bot_timeline(self.tmp / "bot.log", spawned)
            phases["raw"]["seconds"] = round(self.raw_s, 2)
            self.info["phases"] = phases
            self.info["ratio_time"] = round(phases["bot"]["seconds"] / phases["raw"]["seconds"], 3)
        finally:
            await self.shut_down()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--patients", type=int, default=50, help="patients who join carebot's rooms as they come")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--order", default="raw,bot", choices=("raw,bot", "bot,raw"))
    ap.add_argument("--out", default="provision-results.json")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--profile-bot", metavar="PATH")
    a = ap.parse_args()
    args = argparse.Namespace(
        pairs=a.pairs, patients=a.patients, rounds=0, concurrency=a.concurrency, raw_sample=None, repeats=0,
        ready_timeout=max(480.0, 0.6 * a.pairs), profile_bot=a.profile_bot, profile_reconcile=False, order=a.order,
    )
    load = os.getloadavg()
    bench, error = execute(lambda tmp: Provision(args, tmp), "carebot-provision-", keep=a.keep)
    result = {"machine": machine(), "load_before": load, "load_after": os.getloadavg(), "commit": commit(),
              "params": vars(a), "info": bench.info, "error": error}
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    phases = bench.info.get("phases", {})
    for name, p in phases.items():
        say(f"{name}: {p['seconds']} s, cpu {p['cpu_s']}" + (f", timeline {p['timeline_s']}" if "timeline_s" in p else ""))
        for kind, row in list(p["requests"].items())[:12]:
            say(f"    {row['n']:6.0f} × {kind:50s} cpu {row['cpu_s']:7.2f} s  wall {row['wall_s']:8.2f} s")
    say(f"time ratio bot/raw: {bench.info.get('ratio_time')} (load {load[0]:.1f} → {os.getloadavg()[0]:.1f})")
    return 1 if error else 0


if __name__ == "__main__":
    raise SystemExit(main())
