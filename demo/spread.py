"""The sampling spread of the demo's rates: what a seed's figure may honestly look like at
the demo's size.

Each case's outcome is drawn with a probability taken from the seed, so a rate over `n` cases
is a binomial count over `n`: its standard error is sqrt(p(1 - p) / n), and a central interval
of the count holds the figure in 95% of the seeds. The interval is the exact binomial one
(quantiles of the count) while it is small, the normal one once n·min(p, 1 - p) is large.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

LEVEL = 0.95
# Above this expected count (of the rarer outcome) the normal interval is used.
NORMAL_FROM = 50.0


@dataclass(frozen=True)
class Spread:
    """The expected spread of a rate `p` over `n` cases: standard error and interval."""

    p: float
    n: int
    standard_error: float
    low: float
    high: float
    level: float = LEVEL

    def holds(self, value: float | None) -> bool:
        return value is not None and self.low <= value <= self.high


def spread(p: float, n: int, level: float = LEVEL) -> Spread:
    """The central `level` interval of a binomial rate with probability `p` over `n`."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"a probability is between 0 and 1, not {p}")
    if n <= 0:
        return Spread(p, n, math.inf, 0.0, 1.0, level)
    se = math.sqrt(p * (1 - p) / n)
    tail = (1 - level) / 2
    if n * min(p, 1 - p) >= NORMAL_FROM:
        z = NormalDist().inv_cdf(1 - tail)
        return Spread(p, n, se, max(0.0, p - z * se), min(1.0, p + z * se), level)
    rare = min(p, 1 - p)
    low, high = _quantile(rare, n, tail), _quantile(rare, n, 1 - tail)
    if p > 0.5:  # counted the rarer outcome: the failures
        low, high = n - high, n - low
    return Spread(p, n, se, low / n, high / n, level)


def _quantile(p: float, n: int, q: float) -> int:
    """The smallest count k with P(X ≤ k) ≥ q, X ~ Binomial(n, p), p ≤ 0.5 and n·p small."""
    if p == 0.0:
        return 0
    pmf = math.exp(n * math.log1p(-p))
    cdf = pmf
    k = 0
    while cdf < q and k < n:
        pmf *= (n - k) / (k + 1) * p / (1 - p)
        k += 1
        cdf += pmf
    return k
