"""The demo's rates against the seed's, each with the spread a binomial draw of the demo's size
gives it (demo.spread). The seed's rates are the per-case probabilities the generator draws
with (inputs); the demo's rates are counted from what was recorded (they emerge)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from demo.plan import SEED
from demo.spread import LEVEL, Spread, spread

# The years averaged for the yearly re-offending rate: the full years of the history.
FULL_YEARS = range(2021, 2026)
_RECEIVED = SEED["correction_received"]

# (name, seed as quoted, the seed's rate: the probability each case is drawn with).
RATES: tuple[tuple[str, str, float], ...] = (
    ("mediation success rate", "above 96%", SEED["mediation_success_rate"]),
    ("placement rate", "95.3%", SEED["placement_rate"]),
    ("assistance rate", "99.3%", SEED["assistance_rate"]),
    (
        f"yearly re-offending rate ({FULL_YEARS[0]}–{FULL_YEARS[-1]} average)",
        "1.27%",
        SEED["reoffending_rate_yearly"],
    ),
    (
        "correction: current, of received",
        f"{SEED['correction_current']:,} of {_RECEIVED:,}",
        SEED["correction_current"] / _RECEIVED,
    ),
    (
        "correction: released on schedule, of received",
        f"{SEED['correction_completed']:,} of {_RECEIVED:,}",
        SEED["correction_completed"] / _RECEIVED,
    ),
    (
        "correction re-offending",
        "1.14‰ (98)",
        SEED["correction_reoffended"] / _RECEIVED,
    ),
)


# The table matches the seed's when every rate is inside its interval: a claim on all of them
# at once, so each interval is the Bonferroni one (1 - 5%/7 = 99.29% each), and all seven hold
# together for at least 95% of the seeds.
EACH_LEVEL = 1 - (1 - LEVEL) / len(RATES)


@dataclass(frozen=True)
class Comparison:
    name: str
    seed: str
    numerator: int
    denominator: int
    spread: Spread

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    @property
    def within(self) -> bool:
        return self.spread.holds(self.value)


def counts(dispute: dict[str, Any], resettlement: dict[str, Any], correction: dict[str, Any],
           years: list[dict[str, Any]]) -> list[tuple[int, int]]:  # fmt: skip
    """(numerator, denominator) of each of RATES, from indicator figures (the read models'
    or demo.indicators'): `years` are the yearly re-offending rates of FULL_YEARS."""
    per_mille = correction["reoffending_per_mille"] or {"numerator": 0, "denominator": 0}
    return [
        _pair(dispute["success_rate"]),
        _pair(resettlement["placement_rate"]),
        _pair(resettlement["assistance_rate"]),
        (sum(y["numerator"] for y in years), sum(y["denominator"] for y in years)),
        (correction["current"], correction["received"]),
        (correction["completed_on_schedule"], correction["received"]),
        _pair(per_mille),
    ]


def compare(pairs: list[tuple[int, int]]) -> list[Comparison]:
    return [
        Comparison(name, quoted, numerator, denominator, spread(p, denominator, EACH_LEVEL))
        for (name, quoted, p), (numerator, denominator) in zip(RATES, pairs, strict=True)
    ]


def from_streams(figures: dict[str, Any]) -> list[Comparison]:
    """The comparisons from demo.indicators.indicators(...) of the stored events."""
    by_year = figures["resettlement"]["reoffending_rate_by_year"]
    years = [by_year.get(year, {"numerator": 0, "denominator": 0}) for year in FULL_YEARS]
    return compare(
        counts(figures["dispute"], figures["resettlement"], figures["correction"], years)
    )


def _pair(rate: dict[str, Any]) -> tuple[int, int]:
    return int(rate["numerator"]), int(rate["denominator"])
