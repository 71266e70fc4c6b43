"""Latency samples per operation, and the summaries the report prints."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile: a value that was actually observed, never an interpolation."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class Recorder:
    """Every call's latency, by operation; one per workload, shared by its agents (one event loop)."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)

    def add(self, op: str, seconds: float, ok: bool = True) -> None:
        self.samples[op].append(seconds)
        if not ok:
            self.errors[op] += 1

    @property
    def calls(self) -> int:
        return sum(len(v) for v in self.samples.values())

    def summary(self, elapsed: float) -> dict[str, Any]:
        """Per operation: count, refusals, calls/s and p50/p95/p99/max in milliseconds."""
        ops = {}
        for op in sorted(self.samples):
            ops[op] = latency_summary(self.samples[op], elapsed)
            ops[op]["refused"] = self.errors.get(op, 0)
        return {"calls": self.calls, "callsPerSecond": round(self.calls / elapsed, 1) if elapsed else 0.0,
                "elapsedSeconds": round(elapsed, 3), "tools": ops}


def latency_summary(values: list[float], elapsed: float) -> dict[str, Any]:
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "perSecond": round(len(ordered) / elapsed, 1) if elapsed else 0.0,
        "p50Ms": _ms(percentile(ordered, 50)),
        "p95Ms": _ms(percentile(ordered, 95)),
        "p99Ms": _ms(percentile(ordered, 99)),
        "maxMs": _ms(ordered[-1] if ordered else math.nan),
    }


def _ms(seconds: float) -> float | None:
    return None if math.isnan(seconds) else round(seconds * 1000, 3)
