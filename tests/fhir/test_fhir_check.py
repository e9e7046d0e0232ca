"""`carebot fhir check` against a real FHIR server: counts and the first problems with ids."""

from __future__ import annotations

import io
from pathlib import Path

from bot.fhir.devserver import MedplumServer
from bot.fhir.seed import upload
from bot.fhir.setup import main_fhir_check
from tests.fhir import data


def _config(tmp_path: Path, url: str) -> Path:
    (tmp_path / "token").write_text("t0ken")
    path = tmp_path / "config.yaml"
    path.write_text(
        "homeserver: {url: 'http://127.0.0.1:1'}\nbot: {user_id: '@carebot:clinic.example'}\n"
        "storage: {path: ./data}\nroster: {path: ./roster.yaml}\npolicies: {path: ./policies}\n"
        f"fhir:\n  url: '{url}'\n  token_file: ./token\n"
    )
    return path


class Args:
    def __init__(self, config: Path) -> None:
        self.config = str(config)


def test_fhir_check_prints_counts_and_skipped_resource_ids(medplum: MedplumServer, tmp_path: Path) -> None:
    upload(medplum.url, data.resources() + [{"resourceType": "Patient", "id": "no-uri", "name": [{"text": "X"}]}])
    out, err = io.StringIO(), io.StringIO()
    assert main_fhir_check(Args(_config(tmp_path, medplum.url)), out, err) == 0, err.getvalue()
    text = out.getvalue()
    assert "2 practitioners (1 offering messaging), 3 patients, 1 verified pairs" in text
    assert "Patient.skipped: 1" in text
    assert "Patient/no-uri: no Matrix URI" in text


def test_fhir_check_names_the_url_key_when_the_server_is_down(medplum: MedplumServer, tmp_path: Path) -> None:
    medplum.down()
    out, err = io.StringIO(), io.StringIO()
    assert main_fhir_check(Args(_config(tmp_path, medplum.url)), out, err) == 1
    assert "config.yaml: fhir.url:" in err.getvalue() and "server is up" in err.getvalue()


def test_fhir_check_lists_task_writes_the_server_refused(medplum: MedplumServer, tmp_path: Path) -> None:
    import asyncio

    from bot.store import Store

    upload(medplum.url, data.resources())
    config = _config(tmp_path, medplum.url)
    (tmp_path / "data").mkdir()

    async def queue() -> None:
        store = await Store.open(tmp_path / "data" / "carebot.db")
        try:
            async with store.transaction():
                await store.queue_fhir_write(7, "create", {})
                await store.queue_fhir_write(8, "decide", {})
                await store.fhir_write_failed(8, "decide", "Task/abc: gone")
        finally:
            await store.close()

    asyncio.run(queue())
    out, err = io.StringIO(), io.StringIO()
    assert main_fhir_check(Args(config), out, err) == 0, err.getvalue()
    assert "Task writes waiting: 2 (1 refused by the server, retried later)" in out.getvalue()
    assert "R8 decide: refused 1 time(s): Task/abc: gone" in out.getvalue()
