"""Clinic-bridge benchmark (separate from bench/run.py; the lead calls `run()` or the CLI).

    python -m bench.fhir [--patients 10000] [--renewals 200] [--out bench/fhir-results.json]

1. roster sync   --patients patients (each with a finished Encounter and a long-term
                 MedicationRequest, 1 practitioner per 500 patients) on the Medplum test server:
                 wall time, carebot's own CPU time (the rest is the test server, whose
                 in-memory search copies every match for each page) and Python peak memory
                 (tracemalloc) of a full sync, then the wall time of an incremental sync after
                 10 changes. Repeated 3 times, spread shown.
   (The end-to-end `!renouveler` round trip through Synapse, bridge off vs on, is
   bench/fhir_e2e.py; `run(..., e2e_rounds=N)` includes it.)
2. renewal       the work done for one `!renouveler` inside its transaction (what the patient's
                 reply waits for), with the bridge on (the Task write queued in the same
                 transaction) and off, interleaved; p50/p95 in ms. The FHIR write itself runs
                 later, in the drain: its throughput is reported separately (Tasks/s).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bot.care.roster import Care, Patient, Practitioner, Roster, Treatment
from bot.fhir.client import FhirClient
from bot.fhir.devserver import MedplumServer
from bot.fhir.seed import roster_resources, upload
from bot.fhir.source import FhirRosterSource

REPO = Path(__file__).resolve().parents[1]


def synthetic_roster(patients: int) -> Roster:
    n_prac = max(1, patients // 500)
    pracs = tuple(Practitioner(id=f"dr-{i}", matrix_id=f"@dr{i}:clinic.example", display_name=f"Dr {i}", messaging=True) for i in range(n_prac))
    last = dt.date.today() - dt.timedelta(days=30)
    pats = tuple(
        Patient(
            id=f"pat-{i}",
            matrix_id=f"@p{i}:clinic.example",
            display_name=f"Patient {i}",
            care=(Care(practitioner=f"dr-{i % n_prac}", last_consultation=last, treatments=(Treatment(name="Levothyroxine 75 µg", long_term=True),)),),
        )
        for i in range(patients)
    )
    return Roster(practitioners=pracs, patients=pats)


async def _peak_memory(url: str, page_size: int) -> float:
    """Python peak memory (MiB) of one full sync, traced apart: tracing slows allocation."""
    source = FhirRosterSource(FhirClient(url, timeout_s=300), page_size=page_size)
    tracemalloc.start()
    await source.sync(full=True)
    _cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


async def _sync_once(url: str, page_size: int) -> dict[str, float]:
    source = FhirRosterSource(FhirClient(url, timeout_s=300), page_size=page_size)
    t0, c0 = time.perf_counter(), time.process_time()
    build = await source.sync(full=True)
    full_s, full_cpu = time.perf_counter() - t0, time.process_time() - c0
    for i in range(10):  # ten changes on the server, then an incremental sync
        upload(url, [{"resourceType": "Encounter", "id": f"enc-new-{i}", "status": "finished", "class": {"code": "AMB"},
                      "subject": {"reference": f"Patient/pat-{i}"}, "participant": [{"individual": {"reference": "Practitioner/dr-0"}}],
                      "period": {"start": dt.datetime.now(dt.timezone.utc).isoformat()}}])
    t0 = time.perf_counter()
    await source.sync()
    incr_s = time.perf_counter() - t0
    return {"full_s": full_s, "full_cpu_s": full_cpu, "incremental_s": incr_s, "patients": len(build.roster.patients),
            "verified_pairs": len(build.roster.verified_pairs())}


async def bench_sync(server: MedplumServer, patients: int, repeats: int = 3, page_size: int = 500) -> dict[str, Any]:
    server.reset()
    resources = roster_resources(synthetic_roster(patients))
    t0 = time.perf_counter()
    upload(server.url, resources, batch=1000)
    load_s = time.perf_counter() - t0
    runs = [await _sync_once(server.url, page_size) for _ in range(repeats)]

    def spread(key: str) -> dict[str, float]:
        vals = [r[key] for r in runs]
        return {"median": round(statistics.median(vals), 3), "min": round(min(vals), 3), "max": round(max(vals), 3)}

    return {
        "patients": patients,
        "resources": len(resources),
        "page_size": page_size,
        "server_load_s": round(load_s, 1),
        "full_sync_s": spread("full_s"),
        "full_sync_carebot_cpu_s": spread("full_cpu_s"),
        "full_sync_peak_python_mib": round(await _peak_memory(server.url, page_size), 1),
        "incremental_sync_after_10_changes_s": spread("incremental_s"),
        "roster_ok": all(r["patients"] == patients and r["verified_pairs"] >= patients for r in runs),
    }


async def bench_renewal(server: MedplumServer, renewals: int) -> dict[str, Any]:
    """In-process: the transaction a `!renouveler` runs, bridge on vs off, interleaved."""
    from bot.care.service import CareContext, CareService
    from bot.config import load_config
    from bot.fhir.writer import TaskWriter, queue_for_replies
    from bot.store import Store

    server.reset()
    roster = synthetic_roster(renewals)
    upload(server.url, roster_resources(roster), batch=1000)
    tmp = Path(tempfile.mkdtemp(prefix="carebot-bench-fhir-"))
    try:
        shutil.copytree(REPO / "policies", tmp / "policies")
        import yaml

        (tmp / "roster.yaml").write_text(yaml.safe_dump(roster.model_dump(mode="json"), allow_unicode=True))
        (tmp / "config.yaml").write_text(
            "homeserver: {url: 'http://127.0.0.1:1'}\nbot: {user_id: '@carebot:clinic.example'}\n"
            "storage: {path: ./data}\nroster: {path: ./roster.yaml}\npolicies: {path: ./policies}\n"
        )
        care = CareContext.load(load_config(tmp / "config.yaml"))
        store = await Store.open(tmp / "db.sqlite")
        client = FhirClient(server.url)
        build = await FhirRosterSource(client).sync(full=True)
        service = CareService(store)
        on: list[float] = []
        off: list[float] = []
        for i, pair in enumerate(care.roster.verified_pairs()):
            bridge = i % 2 == 0  # interleaved
            t0 = time.perf_counter()
            async with store.transaction():
                replies = await service.handle_message(care, pair, "patient", "!renouveler Levothyroxine 75 µg", f"$e{i}", f"!r{i}:x")
                if bridge:
                    await queue_for_replies(store, build, pair, [(r.renewal[0], r.renewal[1]) for r in replies if r.renewal])
            (on if bridge else off).append((time.perf_counter() - t0) * 1000)
        queued = await store.fhir_queue_length()
        t0 = time.perf_counter()
        written = await TaskWriter(client, store).drain()
        drain_s = time.perf_counter() - t0
        await store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def pct(vals: list[float]) -> dict[str, float]:
        vals = sorted(vals)
        return {"p50_ms": round(vals[len(vals) // 2], 3), "p95_ms": round(vals[int(len(vals) * 0.95) - 1], 3), "n": len(vals)}

    return {
        "reply_path_bridge_on": pct(on),
        "reply_path_bridge_off": pct(off),
        "tasks_queued": queued,
        "tasks_written": written,
        "drain_tasks_per_s": round(written / drain_s, 1) if drain_s else None,
    }


async def run(patients: int = 10000, renewals: int = 200, e2e_rounds: int = 0, e2e_gap_s: float = 1.0) -> dict[str, Any]:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    server = MedplumServer().start()
    try:
        results: dict[str, Any] = {
            "commit": commit,  # taken at the start: the code measured
            "machine": f"{platform.machine()} {platform.processor() or ''} python {platform.python_version()}".strip(),
            "sync": await bench_sync(server, patients),
            "renewal": await bench_renewal(server, renewals),
        }
    finally:
        server.stop()
    if e2e_rounds:
        from bench.fhir_e2e import bench_e2e

        results["renew_roundtrip"] = await bench_e2e(e2e_rounds, e2e_gap_s)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fhir", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--patients", type=int, default=10000)
    p.add_argument("--renewals", type=int, default=200)
    p.add_argument("--e2e-rounds", type=int, default=60, help="!renouveler round trips through Synapse per side (0: skip)")
    p.add_argument("--e2e-gap", type=float, default=1.0, help="seconds between one patient's requests (0: back to back)")
    p.add_argument("--out", default=str(REPO / "bench" / "fhir-results.json"))
    args = p.parse_args(argv)
    results = asyncio.run(run(args.patients, args.renewals, args.e2e_rounds, args.e2e_gap))
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    json.dump(results, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
