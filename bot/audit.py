"""`carebot audit --config F --since DATE`: export the append-only audit trail as JSON lines.

Records name roster ids, room ids and request ids — never message text or medications — with
the hash of the policy files in force when it happened.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from pathlib import Path

from bot.config import Config, load_config
from bot.store import Store, StoreError
from bot.yamlutil import ConfigErrors


def parse_since(text: str) -> float:
    try:
        day = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--since {text!r} is not a date; use YYYY-MM-DD or an ISO date-time") from None
    if day.tzinfo is None:
        day = day.replace(tzinfo=dt.UTC)
    return day.timestamp()


async def export(db_path: Path, since: float, out: object, config: Config | None = None) -> int:
    if config is not None and config.storage.database:
        store = await Store.for_config(Path(config.storage.path), config.storage.database,
                                       config.storage.db_schema, config.bot.user_id)
    else:
        store = await Store.open(db_path)
    try:
        rows = await store.audit_since(since)
    finally:
        await store.close()
    for row in rows:
        row["at"] = dt.datetime.fromtimestamp(row["at"], dt.UTC).isoformat()
        print(json.dumps(row, ensure_ascii=False, sort_keys=True), file=out)  # type: ignore[arg-type]
    return len(rows)


def main_audit(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigErrors as e:
        for err in e.errors:
            print(err, file=sys.stderr)
        return 2
    try:
        since = parse_since(args.since) if args.since else 0.0
    except ValueError as e:
        print(f"carebot audit: {e}", file=sys.stderr)
        return 2
    db = Path(config.storage.path) / "carebot.db"
    if not config.storage.database and not db.exists():
        print(f"carebot audit: no database at {db} (storage.path in {args.config}); has the bot run?", file=sys.stderr)
        return 1
    try:
        asyncio.run(export(db, since, sys.stdout, config))
    except StoreError as e:
        print(f"carebot audit: {e}", file=sys.stderr)
        return 1
    return 0
