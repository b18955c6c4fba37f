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
    # CPU seconds the measured Python processes spent (not the database server's).
    cpu_seconds: float | None = None

    def __add__(self, other: Rate) -> Rate:
        cpu = None
        if self.cpu_seconds is not None and other.cpu_seconds is not None:
            cpu = self.cpu_seconds + other.cpu_seconds
        return Rate(
            self.count + other.count,
            self.seconds + other.seconds,
            [*self.latencies, *other.latencies],
            cpu,
        )

    @property
    def cpu_ms_per_event(self) -> float | None:
        if self.cpu_seconds is None or not self.count:
            return None
        return 1000 * self.cpu_seconds / self.count

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else float("nan")

    @property
    def p50_ms(self) -> float:
        return 1000 * percentile(self.latencies, 50)

    @property
    def p99_ms(self) -> float:
        return 1000 * percentile(self.latencies, 99)


def process_cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds of these processes so far (from /proc)."""
    import os

    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def children_of(pid: int) -> list[int]:
    import os

    result = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if ppid == pid:
            result.append(int(entry))
    return result
