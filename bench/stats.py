"""What the benchmarks compute from their samples: nearest-rank percentiles, a figure's row,
and the raw samples kept in the results (so the spread can be checked)."""

from __future__ import annotations

from typing import Any


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 100)) - 1))
    return s[k]


def figure(name: str, value: float | None, unit: str, goal: str, met: bool | None, **extra: Any) -> dict[str, Any]:
    """One row of the results: a missed goal stays in the table as missed."""
    return {"name": name, "value": None if value is None else round(value, 4), "unit": unit, "goal": goal, "met": met, **extra}


def p50_p95(samples: list[float]) -> tuple[float, float]:
    """(p50, p95) of round trips in seconds."""
    return pct(samples, 50), pct(samples, 95)


def samples_ms(**series: list[float]) -> dict[str, list[float]]:
    """Round trips in seconds -> milliseconds, one decimal, per series."""
    return {name: [round(x * 1000, 1) for x in values] for name, values in series.items()}
