"""`carebot audit --config F [--since DATE] [--format jsonl|table]`: the append-only audit trail.

Records name roster ids, room ids and request ids — never message text or medications — with
the hash of the policy files in force when it happened. Every line about a renewal request
(`renewal.*`) carries `request`, `patient`, `practitioner` and `status`; lines written before
the bot recorded them in the trail get them from the request itself while it is kept.
`--since` defaults to the last 30 days.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from bot.care.renewals import parse_id
from bot.config import Config, load_config
from bot.store import Store, StoreError
from bot.yamlutil import ConfigErrors

DEFAULT_DAYS = 30
FORMATS = ("jsonl", "table")
_IDS = ("request", "patient", "practitioner", "status")
_TABLE = (("at", 20), ("actor", 14), ("action", 20), ("request", 9), ("patient", 12), ("practitioner", 14), ("status", 10), ("policy", 8))


def parse_since(text: str | None, now: dt.datetime | None = None) -> float:
    """Start of the export (UTC timestamp): an ISO date or date-time; None -> 30 days ago."""
    if text is None:
        return ((now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=DEFAULT_DAYS)).timestamp()
    try:
        day = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--since {text!r} is not a date; use YYYY-MM-DD or an ISO date-time") from None
    if day.tzinfo is None:
        day = day.replace(tzinfo=dt.UTC)
    return day.timestamp()


async def _rows(store: Store, since: float) -> list[dict[str, Any]]:
    rows = await store.audit_since(since)
    for row in rows:
        row["at"] = dt.datetime.fromtimestamp(row["at"], dt.UTC).isoformat()
        if not str(row["action"]).startswith("renewal."):
            continue
        details = row.get("details") or {}
        ids = {k: details.get(k) for k in _IDS}
        ids["request"] = ids["request"] or row.get("subject")
        if ids["status"] is None and row["action"] in ("renewal.approved", "renewal.denied", "renewal.cancelled"):
            ids["status"] = row["action"].removeprefix("renewal.")
        number = parse_id(ids["request"] or "") if str(ids["request"] or "").upper().startswith("R") else None
        if number is not None and (ids["patient"] is None or ids["practitioner"] is None or ids["status"] is None):
            request = await store.request(number)
            if request is not None:
                ids["patient"] = ids["patient"] or request.patient_id
                ids["practitioner"] = ids["practitioner"] or request.practitioner_id
                ids["status"] = ids["status"] or request.status
        row.update(ids)
    return rows


def _table(rows: list[dict[str, Any]], out: TextIO) -> None:
    def cell(row: dict[str, Any], key: str, width: int) -> str:
        if key == "at":
            value = str(row["at"])[:19].replace("T", " ")
        elif key == "policy":
            value = (row.get("policy_hash") or "")[:8]
        else:
            value = row.get(key) or ""
        value = str(value)
        return (value if len(value) <= width else value[: width - 1] + "…").ljust(width)

    print("  ".join(name.upper().ljust(width) for name, width in _TABLE).rstrip(), file=out)
    for row in rows:
        print("  ".join(cell(row, name, width) for name, width in _TABLE).rstrip(), file=out)
    print(f"({len(rows)} record{'s' if len(rows) != 1 else ''})", file=out)


async def export(db_path: Path, since: float, out: TextIO, fmt: str = "jsonl", config: Config | None = None) -> int:
    if config is not None and config.storage.database:  # the store is in PostgreSQL
        store = await Store.for_config(Path(config.storage.path), config.storage.database,
                                       config.storage.db_schema, config.bot.user_id)
    else:
        store = await Store.open(db_path)
    try:
        rows = await _rows(store, since)
    finally:
        await store.close()
    if fmt == "table":
        _table(rows, out)
    else:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False, sort_keys=True), file=out)
    return len(rows)


def main_audit(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigErrors as e:
        for err in e.errors:
            print(err, file=sys.stderr)
        return 2
    try:
        since = parse_since(getattr(args, "since", None))
    except ValueError as e:
        print(f"carebot audit: {e}", file=sys.stderr)
        return 2
    db = Path(config.storage.path) / "carebot.db"
    if not config.storage.database and not db.exists():
        print(f"carebot audit: no database at {db} (storage.path in {args.config}); has the bot run?", file=sys.stderr)
        return 1
    try:
        asyncio.run(export(db, since, sys.stdout, getattr(args, "format", "jsonl") or "jsonl", config))
    except StoreError as e:
        print(f"carebot audit: {e}", file=sys.stderr)
        return 1
    return 0
