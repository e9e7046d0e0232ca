import asyncio
import json
import time

import yaml

from bot.audit import main_audit
from bot.cli import main
from bot.store import Store


async def _store_with_history(path):
    store = await Store.open(path)
    async with store.transaction():
        old = await store.add_request(
            event_id="$old", room_id="!r", patient_id="pat-1", practitioner_id="dr-a",
            medication="Levothyroxine 75 µg", medication_key="levothyroxine 75 µg", status="pending",
        )
        await store.decide(old.id, "approved", None, "dr-a")
        await store.db.execute("UPDATE requests SET decided_at = $1 WHERE id = $2", time.time() - 40 * 86400, old.id)
        await store.add_request(
            event_id="$new", room_id="!r", patient_id="pat-1", practitioner_id="dr-a",
            medication="Metformine 500 mg", medication_key="metformine 500 mg", status="pending",
        )
        await store.audit("pat-1", "renewal.requested", "R1", {"status": "pending"}, "abc123")
        await store.audit("dr-a", "renewal.approved", "R1", {}, "abc123")
    return store


async def test_retention_purges_only_decided_requests_older_than_the_limit(tmp_path):
    store = await _store_with_history(tmp_path / "carebot.db")
    async with store.transaction():
        assert await store.purge_decided(30) == 1
    remaining = await store.requests_in_room("!r")
    assert [r.event_id for r in remaining] == ["$new"]  # the pending one is never purged
    await store.close()


def test_audit_export_is_json_lines_with_ids_and_policy_hash(tmp_path, capsys):
    async def prepare():
        store = await _store_with_history(tmp_path / "data" / "carebot.db")
        await store.close()

    asyncio.run(prepare())
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "homeserver": {"url": "http://127.0.0.1:1"},
        "bot": {"user_id": "@bot:x.example", "password": "p"},
        "storage": {"path": "data"}, "roster": {"path": "roster.yaml"}, "policies": {"path": "policies"},
    }))
    assert main(["audit", "--config", str(config), "--since", "2000-01-01"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["action"] for r in rows] == ["renewal.requested", "renewal.approved"]
    assert rows[0]["actor"] == "pat-1" and rows[0]["policy_hash"] == "abc123" and rows[0]["at"].startswith("20")
    assert "Levothyroxine" not in json.dumps(rows)
    assert main(["audit", "--config", str(config), "--since", "2999-01-01"]) == 0
    assert capsys.readouterr().out == ""


def test_audit_with_a_bad_date_says_what_to_write(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "homeserver": {"url": "http://127.0.0.1:1"},
        "bot": {"user_id": "@bot:x.example", "password": "p"},
        "storage": {"path": "data"}, "roster": {"path": "roster.yaml"}, "policies": {"path": "policies"},
    }))
    class Args:
        pass
    args = Args()
    args.config = str(config)
    args.since = "last tuesday"
    assert main_audit(args) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err
