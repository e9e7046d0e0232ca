"""Crash points for the reliability tests: `CAREBOT_CRASH_AT=<name>` kills the process there.

The tests use them to kill the bot (SIGKILL, as `kill -9` would) at the worst moments — after
a request is recorded but before its reply is sent, or after the reply is sent but before the
bot notes it — and then prove that a restart loses nothing and repeats nothing.
Unset (always, in production), a crash point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "CAREBOT_CRASH_AT"


def crash_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
