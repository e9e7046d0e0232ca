"""carebot's `!aide` round trip against a bare nio echo bot, with Element's stack as the patient.

    python -m bench.element [--rounds 100] [--pairs 10] [--isolation all|only-signed|both]
                            [--out bench/element-results.json]

bench/run.py measures with matrix-nio patients; an Element patient (matrix-js-sdk + Rust
crypto, tests/interop/peer.mjs) syncs, decrypts and shares keys otherwise. Same set-up as
bench/run.py, reused from it: a throwaway Synapse, carebot (`python -m bot.cli run`) and the echo
bot (`python -m bench.echo_bot`, carebot's sync filter and outbox width) as child processes,
both in --pairs rooms. One js patient (the roster's first) is in carebot's pair room and in
the echo bot's room for the same pair (made with the same createRoom body); after a warm-up it sends `!aide` to one then the other (A, B,
A, B…), one at a time. Each figure is taken in node (peer.mjs `roundtrip`): from the send call
to the reply (m.in_reply_to the sent event) readable, with no Python <-> node hop in it.

Per round also: sendMs (send call -> server ack), seenMs (-> the reply first in the patient's
timeline, maybe still encrypted), serverMs (reply's origin_server_ts minus the command's: the
bot's side, from the command persisted to the reply persisted, on Synapse's clock) and
patientSideMs (the round trip minus serverMs: the patient's send, the reply's way back to the
patient and its decryption). Medians in parts_p50_ms; paired_*_diff: round i of carebot minus
round i of the echo bot (sent one after the other), median.

--isolation: the patient's key-sharing mode. `all` is the sdk's default; `only-signed` is
Element's "exclude insecure devices" (OnlySignedDevicesIsolationMode, the patient bootstraps
cross-signing first). In only-signed mode a device not signed by its owner gets no room key:
the echo bot (not cross-signed) could not read the patient, so that variant runs only if the
echo bot can cross-sign its device (see `echo_cross_signed` in the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.clients import REPO
from bench.run import Bench, commit, execute, machine, pct, say
from tests.interop.peer import JsPeer

BODY = "!aide"


class ElementBench(Bench):
    """bench/run.py's set-up (Synapse, accounts, bot config, both bots as children) with a js patient."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        super().__init__(args, tmp)
        self.peers: list[JsPeer] = []
        self.rooms: dict[str, str] = {}  # "bot" / "echo" -> room id
        self.results: dict[str, Any] = {}

    async def js_patient(self, isolation: str) -> JsPeer:
        """A logged-in js patient (the roster's first patient), joined to both bots' rooms."""
        peer = await JsPeer.start(f"patient-{isolation}")
        self.peers.append(peer)
        await peer.login(self.hs.url, self.uid(self.patient_local(0)), self.password,
                         device_name=f"element-{isolation}")
        if isolation == "only-signed":
            boot = await peer.bootstrap_cross_signing(self.password)
            if not (boot["ready"] and boot["ownDevice"]["signedByOwner"]):
                raise RuntimeError(f"cross-signing bootstrap: {boot}")
            await peer.set_isolation("only-signed")
        if not self.rooms:  # a later device of the same patient is in them already
            await self.join_rooms(peer)
        return peer

    async def join_rooms(self, peer: JsPeer) -> None:
        """The patient is invited to carebot's pair room and to the raw creation's room for the
        same pair (the same createRoom body, made by the echo bot's account): both rooms have
        the same shape (members invited, state), so the patient's send costs the same in both."""
        bots = {"bot": self.uid("carebot"), "echo": self.uid("echobot")}
        while len(self.rooms) < len(bots):
            room = await peer.wait_invite(timeout=60)
            await peer.join(room)
            for name, bot in bots.items():
                if ((await peer.state(room, "m.room.member", bot)) or {}).get("membership") == "join":
                    self.rooms[name] = room

    async def roundtrip(self, peer: JsPeer, room_id: str, timeout: float = 30) -> dict[str, Any]:
        return await peer.call("roundtrip", roomId=room_id, body=BODY, timeoutMs=int(timeout * 1000),
                               timeout=timeout + 5)

    async def warmup(self, peer: JsPeer, rooms: dict[str, str]) -> None:  # type: ignore[override]
        """Olm sessions and room keys both ways, in both rooms, before anything is timed."""
        for name, room in rooms.items():
            for attempt in range(3):
                try:
                    await self.roundtrip(peer, room, timeout=20)
                    break
                except Exception as e:  # noqa: BLE001 - retried, then raised
                    say(f"warm-up retry {attempt + 1} in the {name} room: {str(e).splitlines()[0]}")
            else:
                raise RuntimeError(f"no reply in the {name} room after 3 tries")
        for _ in range(self.args.warmup):
            for room in rooms.values():
                await self.roundtrip(peer, room)

    async def measure(self, isolation: str) -> None:
        peer = await self.js_patient(isolation)
        rooms = dict(self.rooms)
        await self.warmup(peer, rooms)
        load = os.getloadavg()
        rounds: dict[str, list[dict[str, Any]]] = {"bot": [], "echo": []}
        t0 = time.perf_counter()
        for _ in range(self.args.rounds):  # interleaved, so drift hits both alike
            for name, room in rooms.items():
                rounds[name].append(await self.roundtrip(peer, room))
        wall = time.perf_counter() - t0
        self.results[isolation] = summarise(rounds, load, os.getloadavg(), wall)
        await peer.close()
        self.peers.remove(peer)

    async def run(self) -> None:  # type: ignore[override]
        self.hs.start()
        try:
            say(f"Synapse on {self.hs.url}")
            self.register_all()
            await self.start_echo()
            await self.raw_creation()
            self.write_bot_config()
            self.bot = self.new_bot()
            await self.bot.start()
            say(f"bot ready in {await self.bot.wait_ready(self.args.ready_timeout):.1f} s")
            for isolation in self.args.isolation:
                say(f"patient in {isolation!r} mode: {self.args.rounds} rounds each")
                await self.measure(isolation)
                say(line(isolation, self.results[isolation]))
        finally:
            for peer in self.peers:
                await peer.close()
            for child in (self.bot, self.echo):
                if child is not None:
                    await child.stop()
            self.hs.stop()


def summarise(rounds: dict[str, list[dict[str, Any]]], load0: tuple[float, ...], load1: tuple[float, ...],
              wall: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, rs in rounds.items():
        total = [r["elapsedMs"] for r in rs]
        parts = {k: [r[k] for r in rs if r.get(k) is not None] for k in ("sendMs", "seenMs", "serverMs")}
        # What is not the server-side span: the patient's send to the server, and the reply from
        # the server to the patient, decrypted (node's clock minus Synapse's: same machine).
        parts["patientSideMs"] = [r["elapsedMs"] - r["serverMs"] for r in rs if r.get("serverMs") is not None]
        out[name] = {
            **{f"p{p}_ms": round(pct(total, p), 1) for p in (25, 50, 75, 95)},
            "mean_ms": round(statistics.fmean(total), 1),
            "parts_p50_ms": {k: round(pct(v, 50), 1) for k, v in parts.items() if v},
            "samples_ms": [round(x, 1) for x in total],
            "server_ms": [r.get("serverMs") for r in rs],
        }
    b, e = out["bot"], out["echo"]
    out["p50_ratio"] = round(b["p50_ms"] / e["p50_ms"], 3)
    out["p50_diff_ms"] = round(b["p50_ms"] - e["p50_ms"], 1)
    # Paired: round i of the bot next to round i of the echo bot (sent one after the other).
    out["paired_diff_p50_ms"] = round(statistics.median(x - y for x, y in zip(b["samples_ms"], e["samples_ms"])), 1)
    server = [(x, y) for x, y in zip(b["server_ms"], e["server_ms"]) if x is not None and y is not None]
    out["paired_server_diff_p50_ms"] = round(statistics.median(x - y for x, y in server), 1) if server else None
    out["load_before"] = [round(x, 2) for x in load0]
    out["load_after"] = [round(x, 2) for x in load1]
    out["wall_s"] = round(wall, 1)
    return out


def line(isolation: str, r: dict[str, Any]) -> str:
    b, e = r["bot"], r["echo"]
    return (f"element[{isolation}] p50 bot {b['p50_ms']} ms / echo {e['p50_ms']} ms, ratio {r['p50_ratio']} "
            f"(+{r['p50_diff_ms']} ms; p25 {b['p25_ms']}/{e['p25_ms']}, p75 {b['p75_ms']}/{e['p75_ms']}, "
            f"p95 {b['p95_ms']}/{e['p95_ms']}; p50 of the patient's send {part(b, 'sendMs')}/{part(e, 'sendMs')} ms, "
            f"of the server-side span {part(b, 'serverMs')}/{part(e, 'serverMs')} ms, of the rest "
            f"{part(b, 'patientSideMs')}/{part(e, 'patientSideMs')} ms; load {r['load_before'][0]})")


def part(r: dict[str, Any], name: str) -> Any:
    return r["parts_p50_ms"].get(name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=100, help="timed round trips per bot")
    ap.add_argument("--warmup", type=int, default=5, help="untimed round trips per bot first")
    ap.add_argument("--pairs", type=int, default=10, help="verified pairs (carebot's pair rooms; echo rooms alike)")
    ap.add_argument("--isolation", choices=["all", "only-signed", "both"], default="all",
                    help="the patient's key-sharing mode (both: one run each, same bots)")
    ap.add_argument("--ready-timeout", type=float, default=240.0)
    ap.add_argument("--out", default=str(REPO / "bench" / "element-results.json"))
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, databases)")
    args = ap.parse_args()
    if args.pairs < 1:
        ap.error("--pairs must be at least 1")
    args.isolation = ["all", "only-signed"] if args.isolation == "both" else [args.isolation]
    # What bench/run.py's Bench reads: no nio patients here; the raw creation makes a room for
    # every pair, as carebot does (the echo bot's share of rooms).
    args.patients = 0
    args.concurrency = 4
    args.raw_sample = None
    args.profile_bot = None
    bench, error = execute(lambda tmp: ElementBench(args, tmp), "carebot-element-bench-", keep=args.keep)
    result = {
        "machine": {**machine(), "loadavg": [round(x, 2) for x in os.getloadavg()]},
        "params": {"pairs": bench.n_pairs, "rounds": args.rounds, "warmup": args.warmup, "body": BODY,
                   "echo_rooms": bench.info.get("echo_rooms"), "isolation": args.isolation},
        "commit": commit(),
        "results": bench.results,
        "error": error,
    }
    Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    for isolation, r in bench.results.items():
        print(f"{result['commit']} {line(isolation, r)}")
    print(f"written {args.out}" + (f" — ERROR: {error}" if error else ""), file=sys.stderr)
    return 1 if error else 0


if __name__ == "__main__":
    raise SystemExit(main())
