"""What an operator's Prometheus scrapes: one registry per bot (no global state).

Counters and the reconciliation histogram are fed by the runtime as things happen
(`command()`, `reconciled()`, `synced()`); the gauges that describe the store (outbox, requests,
rooms, undecryptable messages waiting) are read from it when Prometheus scrapes, through the
`snapshot` callable, so they are never stale. Extra gauges (the FHIR bridge's queue depth) are
registered with `add_gauge_source`; they appear only when a source is registered.

Names carry no patient data: labels are command names, request statuses and room states.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Reconciliation: 0.3 s with nothing to do at 1,000 rooms; minutes when provisioning thousands.
RECONCILE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


@dataclass(frozen=True)
class StoreSnapshot:
    """The store's side of the metrics, read at scrape time."""

    outbox_depth: int = 0
    outbox_oldest_created_at: float | None = None
    requests_by_status: Mapping[str, int] = field(default_factory=dict)
    rooms_by_state: Mapping[str, int] = field(default_factory=dict)
    undecryptable_waiting: int = 0


Snapshot = Callable[[], Awaitable[StoreSnapshot]]
GaugeSource = Callable[[], "float | Awaitable[float]"]


async def _empty() -> StoreSnapshot:
    return StoreSnapshot()


class Metrics:
    def __init__(self, snapshot: Snapshot = _empty, clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._snapshot = snapshot
        self._clock = clock
        self._last_sync: float | None = None
        self._sources: dict[str, tuple[Gauge, GaugeSource]] = {}
        self._sync_failures: Callable[[], int] | None = None
        self._sync_failures_seen = 0
        r = self.registry
        self.commands = Counter("carebot_commands", "Commands handled, by command name.", ["command"], registry=r)
        self.syncs = Counter("carebot_syncs", "Sync responses handled.", registry=r)
        self.sync_errors = Counter("carebot_sync_errors", "Sync requests that failed (then retried with backoff).", registry=r)
        self.sync_lag = Gauge("carebot_sync_lag_seconds", "Seconds since the last sync response was handled.", registry=r)
        self.reconcile_seconds = Histogram(
            "carebot_reconcile_duration_seconds", "How long a reconciliation of rooms with the roster took.",
            buckets=RECONCILE_BUCKETS, registry=r,
        )
        self.requests = Gauge("carebot_requests", "Renewal requests in the store, by status.", ["status"], registry=r)
        self.rooms = Gauge("carebot_rooms", "Pair rooms in the store, by state.", ["state"], registry=r)
        self.outbox_depth = Gauge("carebot_outbox_depth", "Replies decided but not yet sent.", registry=r)
        self.outbox_oldest = Gauge(
            "carebot_outbox_oldest_age_seconds", "Age of the oldest reply not yet sent (0 when none).", registry=r
        )
        self.undecryptable = Gauge(
            "carebot_undecryptable_waiting", "Messages the bot could not decrypt yet, waiting for their key.", registry=r
        )
        self.ready = Gauge("carebot_ready", "1 once synced and reconciled, else 0.", registry=r)
        self.up_since = Gauge("carebot_start_time_seconds", "When this process started (Unix time).", registry=r)
        self._started = clock()
        self.up_since.set(self._started)

    # -- fed by the runtime ----------------------------------------------------------------
    def command(self, name: str) -> None:
        self.commands.labels(command=name).inc()

    def synced(self) -> None:
        self._last_sync = self._clock()
        self.syncs.inc()

    def sync_failed(self) -> None:
        self.sync_errors.inc()

    def reconciled(self, seconds: float) -> None:
        self.reconcile_seconds.observe(seconds)

    def set_ready(self, ready: bool) -> None:
        self.ready.set(1 if ready else 0)

    def track_sync_failures(self, count: Callable[[], int]) -> None:
        """`count()`: failed syncs since start (the sync loop's own tally), read at each scrape."""
        self._sync_failures = count

    def add_gauge_source(self, name: str, documentation: str, source: GaugeSource) -> None:
        """A gauge read from `source()` (sync or async) at each scrape, e.g. the FHIR queue depth."""
        if name in self._sources:
            raise ValueError(f"gauge {name} already has a source")
        self._sources[name] = (Gauge(name, documentation, registry=self.registry), source)

    # -- read at scrape time ---------------------------------------------------------------
    @property
    def seconds_since_sync(self) -> float | None:
        return None if self._last_sync is None else max(0.0, self._clock() - self._last_sync)

    async def refresh(self) -> None:
        now = self._clock()
        lag = self.seconds_since_sync
        self.sync_lag.set(lag if lag is not None else now - self._started)
        if self._sync_failures is not None:
            total = self._sync_failures()
            if total > self._sync_failures_seen:
                self.sync_errors.inc(total - self._sync_failures_seen)
                self._sync_failures_seen = total
        snap = await self._snapshot()
        self.outbox_depth.set(snap.outbox_depth)
        oldest = snap.outbox_oldest_created_at
        self.outbox_oldest.set(max(0.0, now - oldest) if oldest is not None else 0.0)
        self.undecryptable.set(snap.undecryptable_waiting)
        _set_labelled(self.requests, "status", snap.requests_by_status)
        _set_labelled(self.rooms, "state", snap.rooms_by_state)
        for gauge, source in self._sources.values():
            value = source()
            if inspect.isawaitable(value):
                value = await value
            gauge.set(float(value))

    async def render(self) -> bytes:
        await self.refresh()
        return generate_latest(self.registry)


def _set_labelled(gauge: Gauge, label: str, values: Mapping[str, int]) -> None:
    """Set each label's value; a label seen before and now absent drops to 0 (not vanishes)."""
    seen = {labels[0] for labels in gauge._metrics}  # noqa: SLF001 - prometheus_client keeps them here
    for key in seen | set(values):
        gauge.labels(**{label: key}).set(values.get(key, 0))
