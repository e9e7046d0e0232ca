"""The operations endpoints on `metrics.listen`: /metrics, /healthz, /readyz (aiohttp).

- `/metrics`: Prometheus text format (bot/ops/metrics.py).
- `/healthz`: 200 while the process runs and its event loop answers (liveness).
- `/readyz`: 200 once the bot has synced and reconciled its rooms with the roster, 503 with
  what it is still waiting for before that (readiness).
Nothing here tells anything about patients: counts, states and command names only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog
from aiohttp import web

from bot.ops.metrics import CONTENT_TYPE, Metrics

log = structlog.get_logger(__name__)


@dataclass
class Readiness:
    """What /readyz waits for. The runtime sets each flag when it is true."""

    synced: bool = False
    reconciled: bool = False
    stopping: bool = False
    _metrics: Metrics | None = field(default=None, repr=False)

    @property
    def ready(self) -> bool:
        return self.synced and self.reconciled and not self.stopping

    def missing(self) -> list[str]:
        out = []
        if self.stopping:
            out.append("stopping")
        if not self.synced:
            out.append("first sync")
        if not self.reconciled:
            out.append("reconciliation of rooms with the roster")
        return out

    def set(self, **flags: bool) -> None:
        for key, value in flags.items():
            if key not in ("synced", "reconciled", "stopping"):
                raise AttributeError(key)
            setattr(self, key, value)
        if self._metrics is not None:
            self._metrics.set_ready(self.ready)


def parse_listen(value: str) -> tuple[str, int]:
    """'127.0.0.1:9464', '[::1]:9464' or ':9464' (all addresses) -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"'{value}' is not host:port. Write it like '127.0.0.1:9464'.")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return (host or "0.0.0.0", int(port))


class OpsServer:
    def __init__(self, metrics: Metrics, readiness: Readiness, listen: str) -> None:
        self.metrics = metrics
        self.readiness = readiness
        readiness._metrics = metrics
        metrics.set_ready(readiness.ready)
        self.host, self.port = parse_listen(listen)
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        return app

    async def start(self) -> "OpsServer":
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:  # tests ask for any free port
            server = getattr(site, "_server", None)
            if server is not None and server.sockets:
                self.port = int(server.sockets[0].getsockname()[1])
        log.info("ops.listening", host=self.host, port=self.port)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        body = await self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.readiness.ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready: waiting for " + ", ".join(self.readiness.missing()) + "\n")
