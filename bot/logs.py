"""Structured logs. Set up once, by the entry point.

Logs never carry message bodies, medications, display names or patients' Matrix ids: callers
log roster ids, room ids, event ids and counts. `pseudonym()` gives a stable keyed hash for
a Matrix id that is not in the roster (a stranger), so repeated attempts can be correlated
without writing the id down.

Error paths follow the same rule, enforced here rather than trusted to each caller:
- `private_text()` is for text that quotes the clinic's files (a rejected roster or policy
  reload): the values it quotes — names, Matrix ids, medications — become '…'; the file, line
  and key stay, and `carebot check-config` prints the full message for the admin.
- every log line (tracebacks and matrix-nio's own messages included) has Matrix user ids
  replaced by `@…` before it is written.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import sys
from typing import Any

import structlog


# A Matrix user id (@localpart:server), wherever it appears in a string.
_USER_ID = re.compile(r"@[A-Za-z0-9._=\-/+]+:[A-Za-z0-9.\-]+(?::\d+)?")
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|«[^»\n]*»")
HIDDEN = "…"
HIDDEN_USER = "@…"


def private_text(text: str) -> str:
    """Text from a configuration error, safe to log: quoted values and Matrix ids hidden."""
    return _USER_ID.sub(HIDDEN_USER, _QUOTED.sub(f"'{HIDDEN}'", text))


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _USER_ID.sub(HIDDEN_USER, value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    return value


def hide_user_ids(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: no Matrix user id in any field of any log line."""
    return {k: _scrub(v) for k, v in event.items()}


class _ToStructlog(logging.Handler):
    """matrix-nio and aiohttp log through the standard library: their records go through the
    same processors (and the same privacy rule) as ours, as JSON lines like the rest."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken library log call must not crash us
            message = str(record.msg)
        structlog.get_logger("carebot").log(
            record.levelno, "library.log", library=record.name, message=private_text(message)
        )


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
            hide_user_ids,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            numeric if isinstance(numeric, int) else logging.INFO
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # matrix-nio logs through the standard library: keep it quiet, and in our format.
    root = logging.getLogger()
    root.handlers[:] = [_ToStructlog()]
    root.setLevel(logging.WARNING)
    for name in ("nio", "peewee", "aiohttp"):
        logging.getLogger(name).setLevel(logging.ERROR)


def pseudonym(value: str, key: bytes) -> str:
    """A short keyed hash: the same id gives the same pseudonym, and it cannot be reversed."""
    return "h:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:16]
