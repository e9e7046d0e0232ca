"""Structured logs. Set up once, by the entry point.

Logs never carry message bodies, medications, display names or patients' Matrix ids: callers
log roster ids, room ids, event ids and counts. `pseudonym()` gives a stable keyed hash for
a Matrix id that is not in the roster (a stranger), so repeated attempts can be correlated
without writing the id down.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import sys

import structlog


def setup_logging(fmt: str = "auto", level: str = "info") -> None:
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer: structlog.typing.Processor
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    else:
        renderer = structlog.processors.JSONRenderer()
    numeric = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            numeric if isinstance(numeric, int) else logging.INFO
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # matrix-nio logs through the standard library; keep it quiet and off our stream's format.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    for name in ("nio", "peewee", "aiohttp"):
        logging.getLogger(name).setLevel(logging.ERROR)


def pseudonym(value: str, key: bytes) -> str:
    """A short keyed hash: the same id gives the same pseudonym, and it cannot be reversed."""
    return "h:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:16]
