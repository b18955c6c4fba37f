"""The province indicator table: the read models' figures next to the seed's, each rate with
its standard error and the interval of the draws at its size: all the rates fall inside
theirs together for 95% of the seeds (demo.compare, demo.spread)."""

from __future__ import annotations

from typing import Any

from casetrail.bootstrap import Casetrail
from demo.compare import FULL_YEARS, Comparison, compare, counts
from demo.plan import SEED
from projections.queries import ReadModels

PROVINCE = "320000"
Row = tuple[str, str, str, str, str]


def province_comparisons(ct: Casetrail) -> tuple[list[Comparison], dict[str, Any]]:
    """The rates compared with the seed's, from the read models, and the figures they came
    from (by kind)."""
    models = ReadModels(ct)

    def figures(kind: str, **period: str) -> dict[str, Any]:
        return models.indicators(kind=kind, unit=PROVINCE, **period)

    by_kind = {kind: figures(kind) for kind in ("dispute", "resettlement", "correction")}
    years = [
        figures("resettlement", from_=f"{y}-01-01", to=f"{y}-12-31")["reoffending_rate"]
        for y in FULL_YEARS
    ]
    pairs = counts(by_kind["dispute"], by_kind["resettlement"], by_kind["correction"], years)
    return compare(pairs), by_kind


def province_rows(ct: Casetrail) -> list[Row]:
    """(indicator, seed, demo value, numerator/denominator, interval and s.e.) rows."""
    comparisons, by_kind = province_comparisons(ct)
    rates = {c.name: _rate_row(c) for c in comparisons}
    names = [c.name for c in comparisons]
    dispute, resettlement, correction = (
        by_kind[k] for k in ("dispute", "resettlement", "correction")
    )
    return [
        ("disputes registered", "300,000+ a year", f"{dispute['registered']:,}", "", "input"),
        rates[names[0]],
        (
            "resettlement: people received",
            "161,757 (six years)",
            f"{resettlement['received']:,}",
            "",
            "input",
        ),
        rates[names[1]],
        rates[names[2]],
        rates[names[3]],
        (
            "transitional bases / people at them now",
            f"{SEED['transitional_bases']} / {SEED['transitional_base_people']:,}",
            f"{resettlement['transitional_bases']} / {resettlement['transitional_base_occupancy']}",
            "",
            "bases: input; people: emerge",
        ),
        (
            "correction: received in total",
            f"{SEED['correction_received']:,}",
            f"{correction['received']:,}",
            "",
            "input",
        ),
        rates[names[4]],
        rates[names[5]],
        rates[names[6]],
    ]


def _rate_row(c: Comparison) -> Row:
    per_mille = "‰" in c.seed
    scale, unit, digits = (1000, "‰", 2) if per_mille else (100, "%", 2)
    shown = f"{scale * c.value:.{digits}f}{unit}" if c.value is not None else "–"
    s = c.spread
    interval = (
        f"{scale * s.low:.{digits}f}–{scale * s.high:.{digits}f}{unit}, "
        f"±{scale * s.standard_error:.{digits}f}"
    )
    if not c.within:
        interval += " OUTSIDE"
    return c.name, c.seed, shown, f"{c.numerator:,}/{c.denominator:,}", interval


def markdown(rows: list[Row]) -> str:
    lines = [
        "| indicator (province 320000) | seed | demo | numerator/denominator "
        "| expected spread at this n: interval (all at once, 95%), s.e. |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows]
    return "\n".join(lines)
