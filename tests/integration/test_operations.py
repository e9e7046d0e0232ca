"""Operations endpoints of a real `carebot run` process: /healthz, /readyz, /metrics, and
`carebot probe` as systemd and compose use it."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import aiohttp
import pytest
import yaml

from bot.devserver import free_port
from tests.integration.helpers import BotProcess, make_clinic, replying_to

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def sample(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}{path}") as resp:
            return resp.status, await resp.text()


async def probe(config: Path, *args: str) -> int:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "probe", "--config", str(config), *args,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, cwd=str(REPO),
    )
    return await asyncio.wait_for(proc.wait(), 60)


async def metrics_until(port: int, name: str, value: float, timeout: float = 30.0) -> str:
    """The /metrics text once `name` reads `value` (it is read from the store at each scrape)."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        _, text = await get(port, "/metrics")
        if sample(text, name) == value:
            return text
        await asyncio.sleep(0.2)
    raise AssertionError(f"{name} never read {value}:\n{text}")


async def test_a_running_bot_is_healthy_ready_and_counts_what_it_does(homeserver, new_user, tmp_path):
    clinic = make_clinic(tmp_path, homeserver, new_user)
    port = free_port()
    config = yaml.safe_load(clinic.config_path.read_text())
    config["metrics"] = {"listen": f"127.0.0.1:{port}"}
    clinic.config_path.write_text(yaml.safe_dump(config))
    patient = await clinic.user(clinic.patient, "patient").start()
    bot = await BotProcess(clinic.config_path).start()  # returns at `carebot.ready`
    try:
        assert await get(port, "/healthz") == (200, "ok\n")
        assert await get(port, "/readyz") == (200, "ready\n")
        assert await probe(clinic.config_path, "--ready") == 0
        room_id = await patient.wait_room()
        await patient.wait_for(lambda s: s.content.get("carebot.disclaimer") is True)
        asked = await patient.send(room_id, "!aide")
        await patient.wait_for(replying_to(asked))
        text = await metrics_until(port, 'carebot_commands_total{command="help"}', 1)
        assert sample(text, 'carebot_rooms{state="active"}') == 1
        assert sample(text, "carebot_ready") == 1
        assert sample(text, "carebot_reconcile_duration_seconds_count") >= 1
        lag = sample(text, "carebot_sync_lag_seconds")
        assert lag is not None and lag < 30
        await metrics_until(port, "carebot_outbox_depth", 0)
        assert "Levothyroxine" not in text and clinic.patient[0] not in text  # no patient data
    finally:
        await bot.stop()
        await patient.close()
    assert await probe(clinic.config_path) == 1  # nothing answers once stopped
