"""`!renouveler` round trips through a real Synapse, bridge off and bridge on, interleaved.

Two carebot processes on one throwaway Synapse, each with its own patient and the same
practitioner: bot A reads roster.yaml, bot B reads the same people from the Medplum FHIR server
and mirrors every request as a Task. Each round, each patient sends `!renouveler …` (timed:
send -> decrypted reply) then `!annuler` (so the policies allow the next one); the order of the
two bots alternates every round, with `gap_s` between one patient's requests (the same for
both; back to back, the bridged bot's Task writes for the previous request share the event
loop with the next reply). Both bots get every advantage the other has (same policies,
flood guard off, same homeserver, same machine).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from bench.clients import REPO, Child, Patient
from bot.care.roster import Roster
from bot.devserver import Homeserver
from bot.fhir.client import FhirClient
from bot.fhir.devserver import MedplumServer
from bot.fhir.seed import roster_resources, upload

MEDICATION = "Levothyroxine 75 µg"


def _roster(hs: Homeserver, patient: str) -> dict[str, Any]:
    last = (dt.date.today() - dt.timedelta(days=30)).isoformat()
    return {
        "practitioners": [{"id": "dr-a", "matrix_id": hs.user_id("drbench"), "display_name": "Dr Bench", "messaging": True}],
        "patients": [{"id": "pat-1", "matrix_id": hs.user_id(patient), "display_name": "Patient Bench",
                      "care": [{"practitioner": "dr-a", "last_consultation": last, "treatments": [{"name": MEDICATION, "long_term": True}]}]}],
    }


def _config(d: Path, hs: Homeserver, bot: str, password: str, fhir_url: str | None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "bot-password").write_text(password)
    config: dict[str, Any] = {
        "homeserver": {"url": hs.url},
        "bot": {"user_id": hs.user_id(bot), "password_file": "bot-password", "device_name": "carebot"},
        "storage": {"path": "data"},
        "roster": {"path": "roster.yaml"},
        "policies": {"path": str(REPO / "policies")},
        "log": {"format": "json", "level": "info"},
        "limits": {"flood_messages_per_minute": 100000},
    }
    if fhir_url:
        config["fhir"] = {"url": fhir_url}  # the default poll period (60 s), as a clinic would run it
    (d / "config.yaml").write_text(yaml.safe_dump(config))
    return d / "config.yaml"


def _pct(vals: list[float]) -> dict[str, float]:
    s = sorted(v * 1000 for v in vals)
    return {"p50_ms": round(statistics.median(s), 1), "p95_ms": round(s[max(0, int(len(s) * 0.95) - 1)], 1),
            "min_ms": round(s[0], 1), "max_ms": round(s[-1], 1), "n": len(s)}


async def bench_e2e(rounds: int = 30, gap_s: float = 1.0) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="carebot-bench-fhir-e2e-"))
    hs = Homeserver(tmp / "synapse")
    fhir = MedplumServer(log_path=tmp / "fhir.log")
    bots: list[Child] = []
    patients: list[Patient] = []
    try:
        hs.start()
        fhir.start()
        password = "bench-password-1"
        for name in ("botplain", "botfhir", "drbench", "patplain", "patfhir"):
            hs.register(name, password)
        plain = _config(tmp / "plain", hs, "botplain", password, None)
        (tmp / "plain" / "roster.yaml").write_text(yaml.safe_dump(_roster(hs, "patplain"), allow_unicode=True))
        bridged = _config(tmp / "fhir", hs, "botfhir", password, fhir.url)
        upload(fhir.url, roster_resources(Roster.model_validate(_roster(hs, "patfhir"))))
        for path in (plain, bridged):
            bots.append(await Child(["-m", "bot.cli", "run", "--config", str(path)], "carebot.ready", log=path.parent / "bot.log").start())
        await asyncio.wait_for(asyncio.gather(*(b.ready.wait() for b in bots)), 120)
        for name, bot in (("patplain", "botplain"), ("patfhir", "botfhir")):
            p = await Patient(hs.url, hs.user_id(name), password, tmp / "clients" / name, {hs.user_id(bot)}).start()
            patients.append(p)
        rooms = []
        for p, bot in zip(patients, ("botplain", "botfhir")):
            await p.wait(lambda p=p, bot=bot: p.room_invited_by(hs.user_id(bot)) is not None, 60)
            rooms.append(p.room_invited_by(hs.user_id(bot)))
        for p, room in zip(patients, rooms):  # warm-up: keys shared, first reply decrypted
            await p.roundtrip(room, "!aide", 60)
        times: dict[str, list[float]] = {"off": [], "on": []}
        for n in range(1, rounds + 1):
            order = [(0, "off"), (1, "on")] if n % 2 else [(1, "on"), (0, "off")]
            for i, kind in order:
                times[kind].append(await patients[i].roundtrip(rooms[i], f"!renouveler {MEDICATION}", 60))
                await patients[i].roundtrip(rooms[i], f"!annuler R{n}", 60)
                await asyncio.sleep(gap_s)  # patients do not write back to back; same gap both sides
        client = FhirClient(fhir.url)
        deadline = time.monotonic() + 60
        while True:  # the Tasks catch up after the replies: wait for all of them, cancelled
            tasks = await client.search("Task", {"identifier": "urn:carebot:renewal|"})
            if sum(t["status"] == "cancelled" for t in tasks) == rounds or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        return {
            "rounds": rounds,
            "gap_between_requests_s": gap_s,
            "renew_roundtrip_bridge_off": _pct(times["off"]),
            "renew_roundtrip_bridge_on": _pct(times["on"]),
            "tasks_on_server": len(tasks),
            "tasks_cancelled": sum(t["status"] == "cancelled" for t in tasks),
        }
    finally:
        for p in patients:
            await p.close()
        for b in bots:
            if b.proc is not None and b.proc.returncode is None:
                b.proc.terminate()
                await b.proc.wait()
        fhir.stop()
        hs.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    import json
    import sys

    out = asyncio.run(bench_e2e(int(sys.argv[1]) if len(sys.argv) > 1 else 30))
    print(json.dumps(out, indent=2))
