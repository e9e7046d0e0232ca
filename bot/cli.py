"""The `carebot` command line.

    carebot check-config --config F      validate config, roster, policies, texts, lexicon
    carebot policy check --config F      list the eligibility rules (and their errors)
    carebot policy explain --config F --patient ID|@mxid --practitioner ID|@mxid --medication "..."
    carebot fhir check --config F        read the roster from the FHIR server, list unusable resources
    carebot roster import --csv F        practice-software CSV export -> validated roster.yaml
    carebot run | demo | recover | audit | trust  (implemented in their own modules)
    carebot probe --config F [--ready]   ask the running bot's /healthz or /readyz
    carebot db migrate-to-postgres --config F --to postgresql://…   copy the SQLite store, verified

`check-config` also checks every file the config names (`*_file` keys: the password file,
token files): it must exist, be readable and not be empty. `policy explain` counts the pair's
open requests from the bot's database when there is one (read only).

Errors are printed one per line on stderr (file:line: key: message) and the exit code is 1.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel

from bot.care.emergency import Lexicon
from bot.care.policy import EligibilityContext, Policies, explain
from bot.care.roster import Roster
from bot.care.texts import Texts
from bot.config import Config, load_config
from bot.yamlutil import ConfigError, ConfigErrors


def _print_errors(errors: list[ConfigError] | tuple[ConfigError, ...], err: TextIO) -> int:
    for e in errors:
        print(e, file=err)
    return 1


@dataclass(frozen=True)
class Loaded:
    config: Config
    roster: Roster
    policies: Policies
    texts: Texts
    lexicon: Lexicon


def load_all(config_path: str) -> Loaded:
    """Config, roster, policies, texts, lexicon — collecting every error before raising."""
    config = load_config(config_path)  # nothing else can be checked without it
    errors: list[ConfigError] = []

    def attempt(load, *args):  # type: ignore[no-untyped-def]
        try:
            return load(*args)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
            return None

    errors.extend(check_named_files(config))
    # With the clinic bridge the roster is read from the FHIR server: `carebot fhir check`.
    roster = Roster() if config.fhir is not None else attempt(Roster.load, config.roster.path)
    policies = attempt(Policies.load, config.policies.path)
    texts = attempt(Texts.load, config.policies.path)
    lexicon = attempt(Lexicon.load, config.policies.path)
    if roster is not None and policies is not None:
        errors.extend(policies.check_against(roster))
    if errors:
        raise ConfigErrors(errors)
    return Loaded(config, roster, policies, texts, lexicon)


def _named_files(model: Any, prefix: str = "") -> Iterator[tuple[str, Path]]:
    """(dotted key, path) of every `*_file` key set in the config, however deep."""
    if not isinstance(model, BaseModel):
        return
    for name in type(model).model_fields:
        value = getattr(model, name)
        key = f"{prefix}{name}"
        if isinstance(value, BaseModel):
            yield from _named_files(value, key + ".")
        elif name.endswith("_file") and value is not None:
            yield key, Path(value)


def check_named_files(config: Config) -> list[ConfigError]:
    """Every file the config names exists, is readable and is not empty (without printing it)."""
    errors = []
    for key, path in _named_files(config):
        if not path.exists():
            errors.append(config.error(key, f"file not found: {path}. Create it or fix the path."))
        elif not path.is_file():
            errors.append(config.error(key, f"{path} is not a file. Give the path of a file."))
        else:
            try:
                with path.open("rb") as f:
                    empty = not f.read(4096).strip()
            except OSError as exc:
                errors.append(config.error(key, f"cannot read {path} ({exc.strerror}). Check its owner and permissions."))
                continue
            if empty:
                errors.append(config.error(key, f"{path} is empty. Put the secret in it."))
    return errors


def cmd_check_config(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        x = load_all(args.config)
    except ConfigErrors as exc:
        return _print_errors(exc.errors, err)
    print(
        f"OK: {len(x.roster.practitioners)} practitioners, {len(x.roster.patients)} patients, "
        f"{len(x.roster.verified_pairs())} verified pairs, {len(x.policies.rules)} rules, "
        f"{len(x.policies.synonyms.table)} synonyms, "
        f"{len(x.lexicon.terms)} emergency terms, {len(x.texts.keys())} texts",
        file=out,
    )
    if x.config.fhir is not None:
        print(f"The roster comes from {x.config.fhir.url}: check it with `carebot fhir check --config {args.config}`.", file=out)
    return 0


def cmd_policy_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        config = load_config(args.config)
        policies = Policies.load(config.policies.path)
    except ConfigErrors as exc:
        return _print_errors(exc.errors, err)
    try:  # cross-check with the roster when it loads (its own errors belong to check-config)
        problems = policies.check_against(Roster.load(config.roster.path))
    except ConfigErrors:
        problems = []
    if problems:
        return _print_errors(problems, err)
    for rule in policies.rules:
        params = {k: v for k, v in rule.model_dump().items() if k not in ("id", "type", "reason")}
        shown = ", ".join(f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in params.items())
        print(f"{rule.id}: {rule.type}" + (f" ({shown})" if shown else ""), file=out)
    print(f"OK: {len(policies.rules)} rules, {len(policies.synonyms.table)} synonyms, sha256 {policies.policy_hash()}", file=out)
    return 0


def _roster_id(roster: Roster, value: str, kind: str) -> str | None:
    """A roster id from an id or a Matrix id ("@alice:clinic.example")."""
    if value.startswith("@"):
        person = roster.patient_by_mxid(value) if kind == "patient" else roster.practitioner_by_mxid(value)
        return person.id if person is not None else None
    found = roster.patient(value) if kind == "patient" else roster.practitioner(value)
    return found.id if found is not None else None


def _open_requests(db: Path, patient_id: str, practitioner_id: str) -> list[str]:
    """Medication keys of the pair's pending requests, read (read-only) from the bot's database."""
    conn = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True, timeout=5)
    try:
        rows = conn.execute(
            "SELECT medication_key FROM requests WHERE patient_id = ? AND practitioner_id = ? AND status = 'pending' ORDER BY id",
            (patient_id, practitioner_id),
        ).fetchall()
    finally:
        conn.close()
    return [r[0] for r in rows]


def cmd_policy_explain(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        x = load_all(args.config)
    except ConfigErrors as exc:
        return _print_errors(exc.errors, err)
    problems = []
    patient_id = _roster_id(x.roster, args.patient, "patient")
    practitioner_id = _roster_id(x.roster, args.practitioner, "practitioner")
    if patient_id is None:
        what = "Matrix id" if args.patient.startswith("@") else "id"
        problems.append(f"unknown patient {what} '{args.patient}'. Use an id or a Matrix id from the roster's 'patients' ({x.config.roster.path}).")
    if practitioner_id is None:
        what = "Matrix id" if args.practitioner.startswith("@") else "id"
        problems.append(
            f"unknown practitioner {what} '{args.practitioner}'. Use an id or a Matrix id from the roster's 'practitioners' ({x.config.roster.path})."
        )
    if problems:
        for p in problems:
            print(p, file=err)
        return 1
    assert patient_id is not None and practitioner_id is not None
    try:
        today = date.fromisoformat(args.today) if args.today else date.today()
    except ValueError:
        print(f"--today: '{args.today}' is not a date. Write it like 2026-01-31.", file=err)
        return 1
    db = Path(x.config.storage.path) / "carebot.db"
    open_keys: list[str] = []
    if x.config.storage.database:
        source = "open requests counted as 0: the store is in PostgreSQL (storage.database), not read offline"
    elif db.exists():
        try:
            open_keys = _open_requests(db, patient_id, practitioner_id)
            source = f"open requests read from {db}"
        except sqlite3.Error as exc:
            source = f"open requests counted as 0: cannot read {db} ({exc})"
    else:
        source = f"open requests counted as 0: no database at {db} yet (storage.path)"
    pair = x.roster.pair(patient_id, practitioner_id)
    ctx = EligibilityContext(pair, args.medication, today, open_medications=tuple(open_keys), open_count=len(open_keys))
    decision = x.policies.evaluate(ctx)
    print(explain(decision, args.locale or x.config.locale), file=out)
    print(f"({source})", file=out)
    return 0


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from bot.runner import main_run  # type: ignore[import-not-found]

    return int(main_run(args) or 0)


def _demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from bot.demo import main_demo  # type: ignore[import-not-found]

    return int(main_demo(args) or 0)


def _recover(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from bot.matrix.crypto.recover_cli import main_recover

    return int(main_recover(args) or 0)


def _audit(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from bot.audit import main_audit  # type: ignore[import-not-found]

    return int(main_audit(args) or 0)


def _fhir_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from bot.fhir.setup import main_fhir_check

    return main_fhir_check(args, out, err)


def _roster_import(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from bot.fhir.csv_roster import main_roster_import

    return main_roster_import(args, out, err)


def add_bridge_commands(sub: Any, with_config: Any) -> None:
    """`carebot fhir check` and `carebot roster import` (the clinic bridge, bot/fhir/)."""
    fhir = sub.add_parser("fhir", help="the clinic bridge to a FHIR R4 server")
    fsub = fhir.add_subparsers(dest="fhir_command", required=True, metavar="ACTION")
    p = with_config(fsub.add_parser("check", help="read the roster from fhir.url; print counts and the first unusable resources"))
    p.set_defaults(func=_fhir_check)
    roster = sub.add_parser("roster", help="roster tools")
    rsub = roster.add_subparsers(dest="roster_command", required=True, metavar="ACTION")
    p = rsub.add_parser("import", help="turn a practice-software CSV export into a validated roster.yaml")
    p.add_argument("--csv", required=True, metavar="FILE", help="the CSV export (columns in the README; English or French headers)")
    p.add_argument("--out", default="roster.yaml", metavar="FILE", help="the roster file to write (default: roster.yaml)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=_roster_import)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="carebot",
        description="Private E2EE channel between each patient and their practitioner. Not an emergency service.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", required=True, metavar="FILE", help="the config file (see config.example.yaml)")
        return p

    p = with_config(sub.add_parser("run", help="run the bot (stops cleanly on SIGTERM/SIGINT)"))
    p.set_defaults(func=_run)

    p = with_config(sub.add_parser("check-config", help="validate config, roster and policies; list every error"))
    p.set_defaults(func=cmd_check_config)

    policy = sub.add_parser("policy", help="inspect the eligibility policies")
    psub = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    p = with_config(psub.add_parser("check", help="validate and list the rules"))
    p.set_defaults(func=cmd_policy_check)
    p = with_config(psub.add_parser("explain", help="show, rule by rule, what a renewal request would get"))
    p.add_argument("--patient", required=True, metavar="ID", help="patient id or Matrix id from the roster")
    p.add_argument("--practitioner", required=True, metavar="ID", help="practitioner id or Matrix id from the roster")
    p.add_argument("--medication", required=True, help="the medication as the patient would type it")
    p.add_argument("--locale", choices=("fr", "en"), help="language of the patient-facing reasons (default: config locale)")
    p.add_argument("--today", metavar="YYYY-MM-DD", help="evaluate as of this date (default: today)")
    p.set_defaults(func=cmd_policy_explain)

    p = sub.add_parser("demo", help="run a throwaway homeserver with a demo roster")
    p.add_argument("--dir", required=True, metavar="D", help="working directory for the demo")
    p.add_argument("--fhir", action="store_true", help="read the roster from a throwaway FHIR server (make run-fhir)")
    p.set_defaults(func=_demo)

    p = with_config(sub.add_parser("recover", help="restore the bot's cross-signing keys from the recovery key"))
    p.add_argument("--recovery-key-file", required=True, metavar="P", help="file holding the recovery key")
    p.add_argument(
        "--log-out-other-devices", action="store_true",
        help="also remove the account's other devices (the bot's lost ones) — never done without this flag",
    )
    p.set_defaults(func=_recover)

    from bot.trust_cli import add_parser as add_trust_parser

    add_trust_parser(sub)

    p = with_config(sub.add_parser("audit", help="print the renewal audit trail"))
    p.add_argument("--since", metavar="DATE", help="first day to include (YYYY-MM-DD; default: the last 30 days)")
    p.add_argument("--format", choices=("jsonl", "table"), default="jsonl", help="JSON lines (default) or a table for people")
    p.set_defaults(func=_audit)
    add_ops_commands(sub, with_config)
    add_bridge_commands(sub, with_config)
    return parser


def _probe(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from bot.ops.probe import main_probe

    return main_probe(args, out, err)


def _db(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from bot.db.copy import main_migrate_to_postgres

    return main_migrate_to_postgres(args, out, err)


def add_ops_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]", with_config) -> None:  # type: ignore[no-untyped-def]
    """`carebot probe` and `carebot db migrate-to-postgres` (operations; bot/ops, bot/db)."""
    p = with_config(sub.add_parser("probe", help="ask the running bot's /healthz (or /readyz): exit 0 if it answers 200"))
    p.add_argument("--ready", action="store_true", help="ask /readyz (synced and reconciled) instead of /healthz")
    p.add_argument("--wait", type=float, default=0.0, metavar="S", help="retry for up to S seconds")
    p.set_defaults(func=_probe)

    db = sub.add_parser("db", help="database operations")
    dsub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    p = with_config(dsub.add_parser(
        "migrate-to-postgres",
        help="copy the SQLite store (requests, audit trail, rooms, outbox, workflow tables) into PostgreSQL, verified",
    ))
    p.add_argument("--to", required=True, metavar="URL", help="postgresql://user@host/database (password: PGPASSWORD or .pgpass)")
    p.add_argument("--schema", metavar="NAME", help="target schema (default: storage.schema, else carebot_<bot localpart>)")
    p.set_defaults(func=_db)


def main(argv: list[str] | None = None) -> int:
    os.umask(0o077)  # files carebot creates (database, keys, session, exports) are private
    args = build_parser().parse_args(argv)
    return int(args.func(args, sys.stdout, sys.stderr))


if __name__ == "__main__":
    raise SystemExit(main())
