"""Operations endpoints and their configuration: /metrics, /healthz, /readyz on metrics.listen."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from bot.config import load_config
from bot.ops import Metrics, OpsServer, Readiness, StoreSnapshot
from bot.yamlutil import ConfigErrors

from unit_helpers import CONFIG, write


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line == name:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in:\n{text}")


async def get(server: OpsServer, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{server.port}{path}") as resp:
            return resp.status, await resp.text()


@pytest.fixture
async def ops():
    clock = Clock()
    state = {"snap": StoreSnapshot()}

    async def snapshot() -> StoreSnapshot:
        return state["snap"]

    metrics = Metrics(snapshot, clock=clock)
    readiness = Readiness()
    server = await OpsServer(metrics, readiness, "127.0.0.1:0").start()
    try:
        yield server, metrics, readiness, clock, state
    finally:
        await server.stop()


async def test_healthz_answers_while_running_and_readyz_only_once_synced_and_reconciled(ops):
    server, _, readiness, _, _ = ops
    assert await get(server, "/healthz") == (200, "ok\n")
    status, body = await get(server, "/readyz")
    assert status == 503 and "first sync" in body and "reconciliation" in body
    readiness.set(synced=True)
    status, body = await get(server, "/readyz")
    assert status == 503 and "first sync" not in body
    readiness.set(reconciled=True)
    assert await get(server, "/readyz") == (200, "ready\n")
    readiness.set(stopping=True)
    assert (await get(server, "/readyz"))[0] == 503


async def test_metrics_report_store_state_commands_sync_lag_and_reconciliation(ops):
    server, metrics, readiness, clock, state = ops
    state["snap"] = StoreSnapshot(
        outbox_depth=3,
        outbox_oldest_created_at=clock.now - 42,
        requests_by_status={"pending": 2, "approved": 5},
        rooms_by_state={"active": 7},
        undecryptable_waiting=1,
    )
    metrics.command("renew")
    metrics.command("renew")
    metrics.command("help")
    metrics.synced()
    clock.now += 12.5
    metrics.reconciled(0.3)
    readiness.set(synced=True, reconciled=True)
    status, text = await get(server, "/metrics")
    assert status == 200
    assert sample(text, "carebot_outbox_depth") == 3
    assert sample(text, "carebot_outbox_oldest_age_seconds") == 42 + 12.5
    assert sample(text, 'carebot_requests{status="pending"}') == 2
    assert sample(text, 'carebot_requests{status="approved"}') == 5
    assert sample(text, 'carebot_rooms{state="active"}') == 7
    assert sample(text, "carebot_undecryptable_waiting") == 1
    assert sample(text, 'carebot_commands_total{command="renew"}') == 2
    assert sample(text, 'carebot_commands_total{command="help"}') == 1
    assert sample(text, "carebot_sync_lag_seconds") == 12.5
    assert sample(text, "carebot_reconcile_duration_seconds_count") == 1
    assert sample(text, "carebot_ready") == 1
    assert "carebot_fhir_queue_depth" not in text


async def test_a_status_that_empties_drops_to_zero_and_an_empty_outbox_has_age_zero(ops):
    server, _, _, _, state = ops
    state["snap"] = StoreSnapshot(requests_by_status={"pending": 1}, outbox_depth=1, outbox_oldest_created_at=0.0)
    await get(server, "/metrics")
    state["snap"] = StoreSnapshot(requests_by_status={"approved": 1})
    _, text = await get(server, "/metrics")
    assert sample(text, 'carebot_requests{status="pending"}') == 0
    assert sample(text, "carebot_outbox_oldest_age_seconds") == 0


async def test_a_registered_gauge_source_such_as_the_fhir_queue_is_read_at_scrape_time(ops):
    server, metrics, _, _, _ = ops
    depth = {"n": 4}

    async def queue_depth() -> float:
        return depth["n"]

    metrics.add_gauge_source("carebot_fhir_queue_depth", "FHIR items waiting.", queue_depth)
    _, text = await get(server, "/metrics")
    assert sample(text, "carebot_fhir_queue_depth") == 4
    depth["n"] = 0
    _, text = await get(server, "/metrics")
    assert sample(text, "carebot_fhir_queue_depth") == 0


def test_metrics_listen_storage_database_and_practitioners_load(tmp_path: Path):
    text = CONFIG.replace(
        'storage:\n  path: "./data"',
        'storage:\n  path: "./data"\n  database: "postgresql://carebot@db.example/carebot"\n  schema: carebot_a',
    ).replace('  device_name: "carebot"', '  device_name: "carebot"\n  practitioners: [dr-a, dr-b]')
    config = load_config(write(tmp_path / "c.yaml", text + 'metrics:\n  listen: "127.0.0.1:9464"\n'))
    assert config.metrics.listen == "127.0.0.1:9464"
    assert config.storage.database == "postgresql://carebot@db.example/carebot"
    assert config.storage.db_schema == "carebot_a"
    assert config.bot.practitioners == ("dr-a", "dr-b")
    default = load_config(write(tmp_path / "d.yaml", CONFIG))
    assert default.metrics.listen is None and default.storage.database is None and default.bot.practitioners is None


@pytest.mark.parametrize(
    ("addition", "line", "key", "words"),
    [
        ('metrics:\n  listen: "9464"\n', 15, "metrics.listen", "is not host:port"),
        ('metrics:\n  listen: "localhost:99999"\n', 15, "metrics.listen", "127.0.0.1:9464"),
    ],
)
def test_a_bad_metrics_listen_names_file_line_and_key(tmp_path: Path, addition, line, key, words):
    f = write(tmp_path / "c.yaml", CONFIG + addition)
    with pytest.raises(ConfigErrors) as info:
        load_config(f)
    (err,) = info.value.errors
    assert (err.file, err.line, err.key) == (str(f), line, key)
    assert words in err.message


def test_a_database_that_is_not_postgresql_names_the_key_and_says_what_to_do(tmp_path: Path):
    f = write(tmp_path / "c.yaml", CONFIG.replace('storage:\n  path: "./data"', 'storage:\n  path: "./data"\n  database: "mysql://db/carebot"'))
    with pytest.raises(ConfigErrors) as info:
        load_config(f)
    (err,) = info.value.errors
    assert (err.line, err.key) == (9, "storage.database")
    assert "not a PostgreSQL URL" in err.message and "remove the key to use SQLite" in err.message


async def test_every_metric_the_grafana_dashboard_plots_is_exported():
    import json
    import re

    from unit_helpers import REPO

    dashboard = json.loads((REPO / "deploy" / "grafana-dashboard.json").read_text())
    wanted = {
        re.sub(r"_(bucket|total)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"carebot_[a-z_]+", target["expr"])
    }
    metrics = Metrics()
    metrics.add_gauge_source("carebot_fhir_queue_depth", "FHIR items waiting.", lambda: 0.0)
    metrics.command("help")
    text = (await metrics.render()).decode()
    exported = {re.sub(r"_total$", "", n) for n in re.findall(r"^# TYPE (carebot_[a-z_]+) ", text, re.M)}
    assert wanted and wanted <= exported, wanted - exported
