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


def _config(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "homeserver": {"url": "http://127.0.0.1:1"},
        "bot": {"user_id": "@bot:x.example", "password": "p"},
        "storage": {"path": "data"}, "roster": {"path": "roster.yaml"}, "policies": {"path": "policies"},
    }))
    return config


def test_audit_decision_lines_carry_request_patient_practitioner_and_status(tmp_path, capsys):
    async def prepare():
        store = await _store_with_history(tmp_path / "data" / "carebot.db")
        async with store.transaction():
            details = {"request": "R2", "patient": "pat-1", "practitioner": "dr-a", "status": "denied"}
            await store.audit("dr-a", "renewal.denied", "R2", details, "abc123")
        await store.close()

    asyncio.run(prepare())
    assert main(["audit", "--config", str(_config(tmp_path))]) == 0  # --since is optional
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # The old line with empty details gets its ids from the request it names.
    assert {k: rows[1][k] for k in ("action", "request", "patient", "practitioner", "status")} == {
        "action": "renewal.approved", "request": "R1", "patient": "pat-1", "practitioner": "dr-a", "status": "approved",
    }
    assert {k: rows[2][k] for k in ("request", "patient", "practitioner", "status")} == {
        "request": "R2", "patient": "pat-1", "practitioner": "dr-a", "status": "denied",
    }


def test_audit_since_defaults_to_the_last_30_days():
    import datetime as dt

    from bot.audit import parse_since

    now = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
    assert parse_since(None, now) == dt.datetime(2026, 10, 27, 12, 0, tzinfo=dt.UTC).timestamp()
    assert parse_since("2026-01-01") == dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()


def test_audit_table_format_is_readable(tmp_path, capsys):
    async def prepare():
        store = await _store_with_history(tmp_path / "data" / "carebot.db")
        await store.close()

    asyncio.run(prepare())
    assert main(["audit", "--config", str(_config(tmp_path)), "--format", "table"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["AT", "ACTOR", "ACTION", "REQUEST", "PATIENT", "PRACTITIONER", "STATUS", "POLICY"]
    assert lines[2].split()[2:] == ["dr-a", "renewal.approved", "R1", "pat-1", "dr-a", "approved", "abc123"]
    assert lines[-1] == "(2 records)"
    assert "Levothyroxine" not in "\n".join(lines)
