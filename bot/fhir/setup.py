"""Building the bridge's parts from the config, and `carebot fhir check`."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any, TextIO

from bot.care.renewals import format_id
from bot.config import Config, load_config
from bot.fhir.auth import AuthError, BearerTokenFile, SmartBackendAuth
from bot.fhir.client import FhirClient, FhirError
from bot.fhir.source import FhirRosterSource
from bot.yamlutil import ConfigErrors

SHOWN_PROBLEMS = 20


def make_client(config: Config) -> FhirClient:
    """The FHIR client of `config.fhir` (which must be set), with its credentials."""
    fhir = config.fhir
    assert fhir is not None
    auth: Any = None
    if fhir.token_file is not None:
        auth = BearerTokenFile(fhir.token_file)
    elif fhir.smart is not None:
        s = fhir.smart
        try:
            auth = SmartBackendAuth.from_key_file(
                s.private_key_file, token_url=s.token_url, client_id=s.client_id, algorithm=s.algorithm, key_id=s.key_id, scope=s.scope
            )
        except AuthError as exc:
            raise ConfigErrors([config.error("fhir.smart.private_key_file", str(exc))]) from None
    return FhirClient(fhir.url, auth, timeout_s=fhir.timeout_s)


async def _check(config: Config, out: TextIO, err: TextIO) -> int:
    assert config.fhir is not None
    source = FhirRosterSource(make_client(config), page_size=config.fhir.page_size)
    try:
        build = await source.sync(full=True)
    except AuthError as exc:
        print(f"{config.source_file}: fhir: {exc}", file=err)
        return 1
    except FhirError as exc:
        print(f"{config.source_file}: fhir.url: {config.fhir.url} did not answer the roster searches ({exc}). "
              "Check the URL, the credentials and that the server is up.", file=err)
        return 1
    roster = build.roster
    print(f"OK: {config.fhir.url}: {len(roster.practitioners)} practitioners "
          f"({sum(p.messaging for p in roster.practitioners)} offering messaging), {len(roster.patients)} patients, "
          f"{len(roster.verified_pairs())} verified pairs", file=out)
    for key in sorted(build.counts):
        print(f"  {key}: {build.counts[key]}", file=out)
    if build.problems:
        print(f"{len(build.problems)} resource(s) skipped or partly ignored; the first {min(SHOWN_PROBLEMS, len(build.problems))}:", file=out)
        for p in build.problems[:SHOWN_PROBLEMS]:
            print(f"  {p}", file=out)
    _print_queue(Path(config.storage.path) / "carebot.db", out)
    return 0


def _print_queue(db: Path, out: TextIO) -> None:
    """The Task writes waiting in the bot's database, if there is one (opened read only)."""
    if not db.exists():
        return
    try:
        conn = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True, timeout=5)
        try:
            rows = conn.execute(
                "SELECT request_id, kind, attempts, last_error FROM fhir_writes ORDER BY request_id, kind"
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return  # an older database without the bridge's tables, or busy: nothing to say
    if not rows:
        print("Task writes waiting: none", file=out)
        return
    refused = [r for r in rows if r[2]]
    print(f"Task writes waiting: {len(rows)} ({len(refused)} refused by the server, retried later)", file=out)
    for request_id, kind, attempts, error in refused[:SHOWN_PROBLEMS]:
        print(f"  {format_id(request_id)} {kind}: refused {attempts} time(s): {error}", file=out)


def main_fhir_check(args: Any, out: TextIO, err: TextIO) -> int:
    try:
        config = load_config(args.config)
        if config.fhir is None:
            print(f"{config.source_file}: fhir.url: not set. Add a 'fhir:' section with the server's url to use the clinic bridge.", file=err)
            return 1
        return asyncio.run(_check(config, out, err))
    except ConfigErrors as exc:
        for e in exc.errors:
            print(e, file=err)
        return 1
