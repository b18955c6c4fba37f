"""Latency percentiles and rates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def percentile(samples: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `samples`, in the samples' unit."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Rate:
    """`count` things in `seconds`, with per-operation latencies in seconds when known."""

    count: int
    seconds: float
    latencies: Sequence[float] = ()

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else float("nan")

    @property
    def p50_ms(self) -> float:
        return 1000 * percentile(self.latencies, 50)

    @property
    def p99_ms(self) -> float:
        return 1000 * percentile(self.latencies, 99)
