"""Operations: Prometheus metrics and the /metrics, /healthz, /readyz endpoints."""

from bot.ops.metrics import Metrics, StoreSnapshot
from bot.ops.server import OpsServer, Readiness, parse_listen

__all__ = ["Metrics", "OpsServer", "Readiness", "StoreSnapshot", "parse_listen"]
