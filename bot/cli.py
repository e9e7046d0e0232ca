"""The `carebot` command line.

    carebot check-config --config F      validate config, roster, policies, texts, lexicon
    carebot policy check --config F      list the eligibility rules (and their errors)
    carebot policy explain --config F --patient ID --practitioner ID --medication "..."
    carebot run | demo | recover | audit  (implemented in their own modules, imported lazily)
    carebot probe --config F [--ready]   ask the running bot's /healthz or /readyz
    carebot db migrate-to-postgres --config F --to postgresql://…   copy the SQLite store, verified

Errors are printed one per line on stderr (file:line: key: message) and the exit code is 1.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import date
from typing import TextIO

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

    roster = attempt(Roster.load, config.roster.path)
    policies = attempt(Policies.load, config.policies.path)
    texts = attempt(Texts.load, config.policies.path)
    lexicon = attempt(Lexicon.load, config.policies.path)
    if roster is not None and policies is not None:
        errors.extend(policies.check_against(roster))
    if errors:
        raise ConfigErrors(errors)
    return Loaded(config, roster, policies, texts, lexicon)


def cmd_check_config(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        x = load_all(args.config)
    except ConfigErrors as exc:
        return _print_errors(exc.errors, err)
    print(
        f"OK: {len(x.roster.practitioners)} practitioners, {len(x.roster.patients)} patients, "
        f"{len(x.roster.verified_pairs())} verified pairs, {len(x.policies.rules)} rules, "
        f"{len(x.lexicon.terms)} emergency terms, {len(x.texts.keys())} texts",
        file=out,
    )
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
    print(f"OK: {len(policies.rules)} rules, sha256 {policies.policy_hash()}", file=out)
    return 0


def cmd_policy_explain(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        x = load_all(args.config)
    except ConfigErrors as exc:
        return _print_errors(exc.errors, err)
    problems = []
    if x.roster.patient(args.patient) is None:
        problems.append(f"unknown patient id '{args.patient}'. Use an id from the roster's 'patients'.")
    if x.roster.practitioner(args.practitioner) is None:
        problems.append(f"unknown practitioner id '{args.practitioner}'. Use an id from the roster's 'practitioners'.")
    if problems:
        for p in problems:
            print(p, file=err)
        return 1
    try:
        today = date.fromisoformat(args.today) if args.today else date.today()
    except ValueError:
        print(f"--today: '{args.today}' is not a date. Write it like 2026-01-31.", file=err)
        return 1
    pair = x.roster.pair(args.patient, args.practitioner)
    decision = x.policies.evaluate(EligibilityContext(pair, args.medication, today))
    print(explain(decision, args.locale or x.config.locale), file=out)
    print("(offline: open requests are counted as 0)", file=out)
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
    p.add_argument("--patient", required=True, metavar="ID", help="patient id from the roster")
    p.add_argument("--practitioner", required=True, metavar="ID", help="practitioner id from the roster")
    p.add_argument("--medication", required=True, help="the medication as the patient would type it")
    p.add_argument("--locale", choices=("fr", "en"), help="language of the patient-facing reasons (default: config locale)")
    p.add_argument("--today", metavar="YYYY-MM-DD", help="evaluate as of this date (default: today)")
    p.set_defaults(func=cmd_policy_explain)

    p = sub.add_parser("demo", help="run a throwaway homeserver with a demo roster")
    p.add_argument("--dir", required=True, metavar="D", help="working directory for the demo")
    p.set_defaults(func=_demo)

    p = with_config(sub.add_parser("recover", help="restore the bot's cross-signing keys from the recovery key"))
    p.add_argument("--recovery-key-file", required=True, metavar="P", help="file holding the recovery key")
    p.set_defaults(func=_recover)

    p = with_config(sub.add_parser("audit", help="print the renewal audit trail"))
    p.add_argument("--since", required=True, metavar="DATE", help="first day to include (YYYY-MM-DD)")
    p.set_defaults(func=_audit)
    add_ops_commands(sub, with_config)
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
    args = build_parser().parse_args(argv)
    return int(args.func(args, sys.stdout, sys.stderr))


if __name__ == "__main__":
    raise SystemExit(main())
