"""Timing results: rates and latency percentiles."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank `q`-th percentile (0 < q <= 100) of `values` (not empty)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(slots=True)
class Measurement:
    """`count` things (events, rows, commits) done in `seconds`, with optional per-operation
    latencies in seconds and extra figures (such as the average group-commit batch)."""

    count: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def latency_ms(self, q: float) -> float | None:
        return percentile(self.latencies, q) * 1000 if self.latencies else None

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "count": self.count,
            "seconds": round(self.seconds, 4),
            "per_second": round(self.rate, 1),
            "operations": len(self.latencies),
        }
        if self.latencies:
            result |= {
                "p50_ms": round(percentile(self.latencies, 50) * 1000, 3),
                "p99_ms": round(percentile(self.latencies, 99) * 1000, 3),
                "max_ms": round(max(self.latencies) * 1000, 3),
            }
        return result | {k: round(v, 3) for k, v in self.extra.items()}
