"""`carebot demo` (what `make run` calls): a throwaway Synapse, demo accounts, the bot.

Everything lives under one directory (default `.dev/`): the homeserver's SQLite database and
keys, the demo roster, the bot's config, store and device. A second run reuses all of it: the
same homeserver port, the same accounts and the same bot device.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import secrets
import sys
from pathlib import Path

import yaml

from bot.devserver import Homeserver

DEMO_USERS = {
    "carebot": "the bot",
    "dr.martin": "practitioner (Dr Claire Martin)",
    "alice": "patient with a long-term treatment (Alice Dupont)",
    "mallory": "a stranger, not in the roster",
}
# What other people see in their client (the roster's names for the roster's people).
DEMO_DISPLAY_NAMES = {
    "carebot": "Messagerie du cabinet",
    "dr.martin": "Dr Claire Martin",
    "alice": "Alice Dupont",
    "mallory": "Mallory Inconnue",
}


def _passwords(d: Path) -> dict[str, str]:
    path = d / "demo-passwords.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    words = {name: f"{name.split('.')[-1]}-{secrets.token_hex(3)}" for name in DEMO_USERS}
    path.write_text(json.dumps(words, indent=2))
    path.chmod(0o600)
    return words


def write_demo_files(d: Path, hs: Homeserver, passwords: dict[str, str], repo: Path) -> Path:
    roster = d / "roster.yaml"
    if not roster.exists():
        last = (dt.date.today() - dt.timedelta(days=60)).isoformat()
        roster.write_text(
            "# Demo roster written by `make run`. Edit it while the bot runs: it reloads.\n"
            + yaml.safe_dump(
                {
                    "practitioners": [
                        {
                            "id": "dr-martin",
                            "matrix_id": hs.user_id("dr.martin"),
                            "display_name": "Dr Claire Martin",
                            "messaging": True,
                        }
                    ],
                    "patients": [
                        {
                            "id": "pat-0001",
                            "matrix_id": hs.user_id("alice"),
                            "display_name": "Alice Dupont",
                            "care": [
                                {
                                    "practitioner": "dr-martin",
                                    "last_consultation": last,
                                    "treatments": [
                                        {"name": "Levothyroxine 75 µg", "long_term": True}
                                    ],
                                }
                            ],
                        }
                    ],
                },
                allow_unicode=True,
                sort_keys=False,
            )
        )
    (d / "bot-password").write_text(passwords["carebot"])
    (d / "bot-password").chmod(0o600)
    config = d / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "homeserver": {"url": hs.url},
                "bot": {
                    "user_id": hs.user_id("carebot"),
                    "password_file": "bot-password",
                    "device_name": "carebot",
                },
                "storage": {"path": "data"},
                "roster": {"path": "roster.yaml"},
                "policies": {"path": str((repo / "policies").resolve())},
                "locale": "fr",
                "log": {"format": "console", "level": "info"},
            },
            sort_keys=False,
        )
    )
    return config


def banner(hs: Homeserver, passwords: dict[str, str], config: Path) -> str:
    lines = [
        "",
        "carebot demo is starting",
        f"  homeserver : {hs.url}   (server name '{hs.server_name}')",
        f"  bot config : {config}",
        "  log in with Element (Web or desktop: 'Edit' the homeserver, enter the URL above)",
        "  or with any Matrix client, as:",
    ]
    for name, role in DEMO_USERS.items():
        if name == "carebot":
            continue
        lines.append(f"    {hs.user_id(name):<22} password {passwords[name]:<20} {role}")
    lines += [
        "  The bot invites the patient and the practitioner to their private room, and the",
        "  practitioner to a Space holding her patients' rooms and her desk ('Bureau — …').",
        "  Try, as the patient: !aide   !renouveler Levothyrox 75   !statut",
        "  and as the practitioner, in the desk: !attente   !accepter R1 Ordonnance prête",
        "  Ctrl-C stops the bot and the homeserver. `make run` again reuses them.",
        "",
    ]
    return "\n".join(lines)


def main_demo(args: argparse.Namespace) -> int:
    d = Path(args.dir).resolve()
    d.mkdir(parents=True, exist_ok=True)
    repo = Path(__file__).resolve().parent.parent
    hs = Homeserver(d / "synapse")
    hs.start()
    fhir_server = None
    try:
        passwords = _passwords(d)
        for name in DEMO_USERS:
            hs.register(name, passwords[name], displayname=DEMO_DISPLAY_NAMES[name])
        config_path = write_demo_files(d, hs, passwords, repo)
        print(banner(hs, passwords, config_path), file=sys.stderr, flush=True)
        if getattr(args, "fhir", False):  # make run-fhir: the roster from a throwaway FHIR server
            from bot.fhir.demo import banner_lines, start_demo_fhir

            fhir_server = start_demo_fhir(config_path, d / "roster.yaml")
            print("\n".join(banner_lines(fhir_server)) + "\n", file=sys.stderr, flush=True)
        from bot.config import load_config
        from bot.logs import setup_logging
        from bot.runner import run_bot

        config = load_config(config_path)
        setup_logging(config.log.format, config.log.level)
        try:
            asyncio.run(run_bot(config))
        except KeyboardInterrupt:
            pass
    finally:
        if fhir_server is not None:
            fhir_server.stop()
        hs.stop()
        print("carebot demo stopped.", file=sys.stderr)
    return 0
