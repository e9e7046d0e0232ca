"""`carebot probe`: ask the running bot's /healthz (or /readyz) — for systemd, Docker, scripts.

Exit 0 when it answers 200, 1 otherwise, 2 when metrics.listen is not set. With --wait N it
retries for up to N seconds (a unit's ExecStartPost, a container's start period).
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request
from typing import TextIO

from bot.config import load_config
from bot.ops.server import parse_listen
from bot.yamlutil import ConfigErrors


def probe_url(listen: str, ready: bool) -> str:
    host, port = parse_listen(listen)
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/{'readyz' if ready else 'healthz'}"


def check(url: str, timeout: float = 5.0) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback URL from config
            return resp.status == 200, resp.read().decode(errors="replace").strip()
    except urllib.error.HTTPError as exc:
        return False, exc.read().decode(errors="replace").strip() or f"HTTP {exc.code}"
    except OSError as exc:
        return False, f"no answer ({exc})"


def main_probe(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    try:
        config = load_config(args.config)
    except ConfigErrors as exc:
        for e in exc.errors:
            print(e, file=err)
        return 1
    if not config.metrics.listen:
        print(
            config.error("metrics", "metrics.listen is not set, so there is nothing to probe. "
                         "Add it, e.g. 'metrics: {listen: \"127.0.0.1:9464\"}'."),
            file=err,
        )
        return 2
    url = probe_url(config.metrics.listen, args.ready)
    deadline = time.monotonic() + max(0.0, args.wait)
    while True:
        ok, detail = check(url)
        if ok or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    print(f"{url}: {detail}", file=out if ok else err)
    return 0 if ok else 1
