"""The province indicator table: the read models' figures next to the seed's."""

from __future__ import annotations

from typing import Any

from casetrail.bootstrap import Casetrail
from demo.plan import SEED
from projections.queries import ReadModels

PROVINCE = "320000"
FULL_YEARS = range(2021, 2026)


def province_rows(ct: Casetrail) -> list[tuple[str, str, str, str]]:
    """(indicator, seed, demo value, numerator/denominator) rows, from the read models."""
    models = ReadModels(ct)

    def figures(kind: str, **period: str) -> dict[str, Any]:
        return models.indicators(kind=kind, unit=PROVINCE, **period)

    dispute = figures("dispute")
    resettlement = figures("resettlement")
    correction = figures("correction")
    years = [
        figures("resettlement", from_=f"{y}-01-01", to=f"{y}-12-31")["reoffending_rate"]
        for y in FULL_YEARS
    ]
    yearly = {
        "numerator": sum(y["numerator"] for y in years),
        "denominator": sum(y["denominator"] for y in years),
    }
    yearly["value"] = yearly["numerator"] / yearly["denominator"] if yearly["denominator"] else None
    per_mille = correction["reoffending_per_mille"]
    return [
        ("disputes registered", "300,000+ a year", f"{dispute['registered']:,}", ""),
        ("mediation success rate", "above 96%", *_rate(dispute["success_rate"])),
        (
            "resettlement: people received",
            "161,757 (six years)",
            f"{resettlement['received']:,}",
            "",
        ),
        ("placement rate", "95.3%", *_rate(resettlement["placement_rate"])),
        ("assistance rate", "99.3%", *_rate(resettlement["assistance_rate"])),
        (
            f"yearly re-offending rate ({FULL_YEARS[0]}–{FULL_YEARS[-1]} average)",
            "1.27%",
            *_rate(yearly),
        ),
        (
            "transitional bases / people at them now",
            "695 / 3,439",
            f"{resettlement['transitional_bases']} / {resettlement['transitional_base_occupancy']}",
            "",
        ),
        (
            "correction: received in total",
            f"{SEED['correction_received']:,}",
            f"{correction['received']:,}",
            "",
        ),
        (
            "correction: current",
            f"{SEED['correction_current']:,}",
            f"{correction['current']:,}",
            "",
        ),
        (
            "correction: released on schedule",
            f"{SEED['correction_completed']:,}",
            f"{correction['completed_on_schedule']:,}",
            "",
        ),
        (
            "correction re-offending",
            "1.14‰ (98)",
            f"{per_mille['value']:.2f}‰" if per_mille.get("value") is not None else "–",
            f"{per_mille['numerator']}/{per_mille['denominator']}",
        ),
    ]


def _rate(rate: dict[str, Any]) -> tuple[str, str]:
    value = rate.get("value")
    shown = f"{100 * value:.2f}%" if value is not None else "–"
    return shown, f"{rate['numerator']:,}/{rate['denominator']:,}"


def markdown(rows: list[tuple[str, str, str, str]]) -> str:
    lines = [
        "| indicator (province 320000) | seed | demo | numerator/denominator |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)
