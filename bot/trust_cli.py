"""`carebot trust list | accept <matrix id>`: the pinned identities of roster members.

`list` shows, per member, the pinned master key and, after an identity reset, the new key
waiting for the clinic admin. `accept` makes the new key the pinned one (audited): in
`cross-signed` mode the member's devices signed by it get room keys again, and their commands
count. The running bot reads the pins at each message; no restart is needed.

Accept a new identity only after checking with the person, by a means other than Matrix (a
phone call, at the desk), that they reset it themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from pathlib import Path
from typing import TextIO

from bot.care.roster import Roster
from bot.config import load_config
from bot.store import IdentityPin, Store
from bot.yamlutil import ConfigErrors


def _when(ts: float | None) -> str:
    return "-" if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _roster_ids(roster_path: str) -> dict[str, str]:
    try:
        roster = Roster.load(roster_path)
    except ConfigErrors:
        return {}  # the roster's own errors belong to check-config; ids are only a convenience
    ids = {p.matrix_id: p.id for p in roster.patients}
    ids.update({p.matrix_id: p.id for p in roster.practitioners})
    return ids


def format_pins(pins: list[IdentityPin], ids: dict[str, str]) -> list[str]:
    lines = []
    for pin in pins:
        who = f"{pin.user_id} ({ids.get(pin.user_id, 'not in the roster')})"
        if pin.new_master_key is None:
            lines.append(f"{who}: pinned {pin.master_key} since {_when(pin.pinned_at)}")
        else:
            lines.append(
                f"{who}: CHANGED on {_when(pin.changed_at)}: pinned {pin.master_key}, new "
                f"{pin.new_master_key} waiting — check with the person, then: carebot trust accept {pin.user_id}"
            )
    return lines


async def list_pins(db: Path) -> list[IdentityPin]:
    store = await Store.open(db)
    try:
        return list((await store.identity_pins()).values())
    finally:
        await store.close()


async def accept(db: Path, user_id: str, roster_id: str) -> IdentityPin | None:
    store = await Store.open(db)
    try:
        async with store.transaction():
            before = await store.accept_identity(user_id)
            if before is not None:
                await store.audit(
                    "admin", "identity.accepted", roster_id,
                    {"previous": before.master_key, "new": before.new_master_key},
                )
        return before
    finally:
        await store.close()


def main_trust(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    try:
        config = load_config(args.config)
    except ConfigErrors as e:
        for error in e.errors:
            print(error, file=err)
        return 2
    db = Path(config.storage.path) / "carebot.db"
    if not db.exists():
        print(f"carebot trust: no database at {db} (storage.path in {args.config}); has the bot run?", file=err)
        return 1
    ids = _roster_ids(config.roster.path)
    if args.trust_command == "list":
        pins = asyncio.run(list_pins(db))
        for line in format_pins(pins, ids):
            print(line, file=out)
        waiting = sum(1 for p in pins if p.new_master_key is not None)
        print(f"{len(pins)} pinned identities, {waiting} waiting for acceptance", file=out)
        return 0
    before = asyncio.run(accept(db, args.matrix_id, ids.get(args.matrix_id, "?")))
    if before is None:
        print(
            f"carebot trust accept: {args.matrix_id} has no identity change waiting in {db}. "
            "`carebot trust list` shows the pinned identities and the changes waiting.",
            file=err,
        )
        return 1
    print(f"{args.matrix_id}: new identity {before.new_master_key} accepted (was {before.master_key}).", file=out)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`carebot trust …`, wired into bot/cli.py."""
    trust = sub.add_parser("trust", help="pinned identities of roster members: list, accept a reset")
    tsub = trust.add_subparsers(dest="trust_command", required=True, metavar="ACTION")
    p = tsub.add_parser("list", help="pinned master keys, and identity changes waiting")
    p.add_argument("--config", required=True, metavar="FILE", help="the config file")
    p = tsub.add_parser("accept", help="pin the new identity of a member after an identity reset")
    p.add_argument("matrix_id", metavar="MATRIX_ID", help="the member's Matrix id, e.g. @alice:clinic.example")
    p.add_argument("--config", required=True, metavar="FILE", help="the config file")
    trust.set_defaults(func=lambda a, out, err: main_trust(a, out, err))
