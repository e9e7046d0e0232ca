"""`carebot run`: load the config, set up logging, run the bot until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import structlog

from bot.runtime import CareBot, install_signal_handlers
from bot.config import Config, load_config, resolve_password
from bot.logs import setup_logging
from bot.matrix.client import StartupError
from bot.matrix.crypto import IdentityExists
from bot.store import StoreError
from bot.yamlutil import ConfigErrors


async def run_bot(config: Config, stop: asyncio.Event | None = None) -> None:
    password = resolve_password(config)  # fail before touching the network
    stop = stop or asyncio.Event()
    bot = CareBot(config, lambda: password)
    install_signal_handlers(bot, stop)
    await bot.run(stop)


def main_run(args: argparse.Namespace) -> int:
    os.umask(0o077)  # every file and directory the bot creates is its owner's alone
    try:
        config = load_config(args.config)
        resolve_password(config)
    except ConfigErrors as e:
        for err in e.errors:
            print(err, file=sys.stderr)
        return 2
    setup_logging(config.log.format, config.log.level)
    log = structlog.get_logger("carebot")
    try:
        asyncio.run(run_bot(config))
    except ConfigErrors as e:
        for err in e.errors:
            print(err, file=sys.stderr)
        return 2
    except (StartupError, StoreError, IdentityExists) as e:
        log.error("carebot.cannot_start", reason=str(e))
        print(f"carebot cannot start: {e}", file=sys.stderr)
        return 3
    log.info("carebot.stopped")
    return 0
