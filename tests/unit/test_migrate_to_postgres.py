"""`carebot db migrate-to-postgres`: a SQLite store copied into a real PostgreSQL, verified."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bot.cli import main
from bot.db import schema_for
from bot.db.copy import table_hash
from bot.store import Store

from unit_helpers import CONFIG, write


async def fill(store: Store) -> None:
    async with store.transaction():
        await store.set("sync_token", "s123_456")
        await store.save_room("!r1:x", "pat-1", "dr-a")
        await store.save_room("!r2:x", "pat-2", "dr-a", state="closed")
        for n in range(3):
            req = await store.add_request(
                event_id=f"$e{n}", room_id="!r1:x", patient_id="pat-1", practitioner_id="dr-a",
                medication="Lévothyroxine 75 µg", medication_key="levothyroxine 75 µg", status="pending",
                rules=("verified-pair",),
            )
            await store.audit("@pat:x", "renewal.created", f"R{req.id}", {"n": n}, "hash")
        await store.decide(2, "approved", "ordonnance prête", "dr-a")
        await store.enqueue("txn-1", "!r1:x", {"body": "à envoyer"})
        await store.mark_processed("$e0", "!r1:x")
        await store.save_pending_banner("!r2:x", "first_member", {"body": "banner"})
        await store.need_reinvite("!r2:x", "@p2:x")
        await store.mark_warned("!r1:x", "@p:x", "DEV")
        await store.add_undecryptable("$u", "!r1:x", 1.7e9 + 0.25, {"type": "m.room.encrypted"})


def config_file(tmp_path: Path) -> Path:
    return write(tmp_path / "config.yaml", CONFIG)


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_every_table_is_copied_and_verified_by_counts_and_hashes(tmp_path: Path, pg_url: str):
    import asyncio

    config = config_file(tmp_path)

    async def prepare() -> None:
        store = await Store.open(tmp_path / "data" / "carebot.db")
        await fill(store)
        await store.close()

    asyncio.run(prepare())
    code, out, err = run_cli("db", "migrate-to-postgres", "--config", str(config), "--to", pg_url)
    assert code == 0, err
    for table in ("requests", "audit", "rooms", "outbox", "kv", "processed_events",
                  "pending_banners", "reinvites", "device_warnings", "undecryptable"):
        assert f"{table}: " in out and "MISMATCH" not in out
    assert "audit: 3 rows" in out and "requests: 3 rows" in out
    assert "set storage.database" in out

    async def check() -> None:
        schema = schema_for("@carebot:clinic.example")
        source = await Store.open(tmp_path / "data" / "carebot.db")
        target = await Store.for_config(tmp_path, pg_url, schema, "@carebot:clinic.example")
        try:
            assert await target.get("sync_token") == "s123_456"
            assert [r.status for r in await target.requests_in_room("!r1:x")] == ["pending", "approved", "pending"]
            assert await target.audit_since(0) == await source.audit_since(0)
            assert (await target.undecryptables())[0].deadline == 1.7e9 + 0.25
            # New ids continue after the copied ones, and the audit trail is still append-only.
            async with target.transaction():
                new = await target.add_request(
                    event_id="$new", room_id="!r1:x", patient_id="pat-1", practitioner_id="dr-a",
                    medication="x", medication_key="x", status="pending",
                )
            assert new.id == 4
            with pytest.raises(Exception, match="append-only"):
                await target.db.execute("DELETE FROM audit")
        finally:
            await source.close()
            await target.close()

    asyncio.run(check())
    # A second copy into the same (now filled) schema is refused, nothing written.
    code, _, err = run_cli("db", "migrate-to-postgres", "--config", str(config), "--to", pg_url)
    assert code == 1 and "already holds rows" in err


def test_a_missing_sqlite_store_or_a_non_postgresql_target_is_a_clear_error(tmp_path: Path):
    config = config_file(tmp_path)
    code, _, err = run_cli("db", "migrate-to-postgres", "--config", str(config), "--to", "postgresql://x@127.0.0.1:1/x")
    assert code == 1 and "no SQLite store" in err and "storage.path" in err
    code, _, err = run_cli("db", "migrate-to-postgres", "--config", str(config), "--to", "mysql://x/y")
    assert code == 1 and "not a PostgreSQL URL" in err


def test_table_hashes_ignore_row_order_but_not_values():
    rows = [(1, "a", 1.5, None), (2, "b", 2.0, "x")]
    assert table_hash(rows) == table_hash(list(reversed(rows)))
    assert table_hash(rows) != table_hash([(1, "a", 1.5, None), (2, "b", 2.0, "y")])
