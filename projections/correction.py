"""Community-correction indicators (DOMAIN.md §3), upcoming term ends and report-in windows.

Counters per (unit, day, metric) for what happened in a period; one row per subject for
what depends on "now" (current, 漏管, absconded, monitoring, terms ending soon).
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from domain import rules
from domain.case import CaseEvent
from domain.clock import add_days
from projections.engine import Batch, Projection, Tables, counter_table, event_day

ENDINGS = {
    "CorrectionCompleted": "completed",
    "SubjectCommitted": "committed",
    "SubjectDied": "died",
}
SANCTIONS = {
    "ReprimandIssued": "reprimand",
    "WarningIssued": "warning",
    "PublicSecurityPenaltyProposed": "public_security_penalty",
    "RevocationProposed": "revocation",
}


class CorrectionIndicators(Projection):
    name: ClassVar[str] = "correction"
    tables: ClassVar[tuple[str, ...]] = ("subjects", "counts")
    weight: ClassVar[float] = 0.1
    kinds: ClassVar[frozenset[str] | None] = frozenset({"correction"})

    def create_statements(self, t: Tables) -> list[str]:
        subjects = t["subjects"]
        return [
            f"CREATE TABLE IF NOT EXISTS {subjects} (case_id TEXT PRIMARY KEY, unit TEXT NOT NULL, "
            "path TEXT NOT NULL, received_on TEXT NOT NULL, received_unit TEXT NOT NULL, "
            "active INTEGER NOT NULL, term_end TEXT, active_term_end TEXT, "
            "report_due TEXT, reported INTEGER NOT NULL DEFAULT 0, "
            "absconded INTEGER NOT NULL DEFAULT 0, monitoring_until TEXT, "
            "reoffended INTEGER NOT NULL DEFAULT 0, minor INTEGER NOT NULL DEFAULT 0)",
            f"CREATE INDEX IF NOT EXISTS {subjects}_active ON {subjects} (active, path)",
            f"CREATE INDEX IF NOT EXISTS {subjects}_term ON {subjects} (active_term_end, path)",
            f"CREATE INDEX IF NOT EXISTS {subjects}_report ON {subjects} (report_due, path)",
            f"CREATE INDEX IF NOT EXISTS {subjects}_absconded ON {subjects} (absconded, path)",
            f"CREATE INDEX IF NOT EXISTS {subjects}_monitoring ON {subjects} (monitoring_until, path)",
            *counter_table(t),
        ]

    def apply(self, b: Batch, event: CaseEvent, kind: str, position: int) -> None:
        if kind != "correction":
            return
        case_id = str(event.originator_id)
        name = type(event).__name__
        data = event.data
        if name == "CorrectionSubjectReceived":
            from projections.cases import _is_minor

            place = b.place(str(getattr(event, "unit", "")))
            received_on = event_day(event)
            effective = data.get("decision_effective_on")
            report_due = (
                add_days(date.fromisoformat(effective), rules.REPORT_IN_DAYS).isoformat()
                if effective
                else None
            )
            term_end = data.get("term_end")
            b.insert(
                "subjects",
                "case_id",
                {
                    "case_id": case_id,
                    "unit": place.unit,
                    "path": place.path,
                    "received_on": received_on,
                    "received_unit": place.unit,
                    "active": 1,
                    "term_end": term_end,
                    "active_term_end": term_end,
                    "report_due": report_due,
                    "reported": 0,
                    "absconded": 0,
                    "monitoring_until": None,
                    "reoffended": 0,
                    "minor": int(_is_minor(data.get("person") or {}, data)),
                },
            )
            b.count("counts", place, received_on, "received")
            return
        row = b.row("subjects", "case_id", case_id)
        if row is None:
            return
        place = b.place(row["unit"])
        changes: dict[str, Any] = {}
        if name == "SubjectReportedIn":
            reported_on = event_day(event, "reported_on")
            changes.update(reported=1, report_due=None)
            b.count("counts", place, reported_on, "reported_in")
            due = row["report_due"]
            if due is None or reported_on <= due:
                # On-time report-in rate: over the cohort received, on its day and unit.
                b.count(
                    "counts",
                    b.place(row["received_unit"]),
                    row["received_on"],
                    "received_reported_on_time",
                )
        elif name in ENDINGS:
            changes.update(
                active=0, active_term_end=None, report_due=None, monitoring_until=None, absconded=0
            )
            b.count("counts", place, event_day(event, "on"), ENDINGS[name])
        elif name in SANCTIONS:
            b.count("counts", place, event_day(event, "on"), f"sanction:{SANCTIONS[name]}")
        elif name == "SubjectAbsconded":
            changes["absconded"] = 1
        elif name == "SubjectLocated":
            changes["absconded"] = 0
        elif name == "ElectronicMonitoringStarted":
            changes["monitoring_until"] = str(data.get("until", ""))[:10] or None
        elif name == "ElectronicMonitoringEnded":
            changes["monitoring_until"] = None
        elif name == "ResidenceChanged" and data.get("to_unit"):
            new = b.place(data["to_unit"])
            changes.update(unit=new.unit, path=new.path)
        elif name == "Reoffended" and not row["reoffended"]:
            # Re-offending is counted per person (the seed's 98 people).
            changes["reoffended"] = 1
            b.count("counts", place, event_day(event, "on"), "reoffended")
        b.update("subjects", case_id, **changes)


def correction_indicators(
    counts: dict[str, int], received_to_end: int, now: dict[str, int]
) -> dict[str, Any]:
    from projections.queries import per_mille, rate

    received = counts.get("received", 0)
    reoffended = counts.get("reoffended", 0)
    return {
        "received": received,
        "cumulative_received": received_to_end,
        "current": now.get("current", 0),
        "completed_on_schedule": counts.get("completed", 0),
        "committed": counts.get("committed", 0),
        "died": counts.get("died", 0),
        "reoffended": reoffended,
        "reoffending_per_mille": per_mille(reoffended, received_to_end),
        "on_time_report_in_rate": rate(counts.get("received_reported_on_time", 0), received),
        "reported_in": counts.get("reported_in", 0),
        "missed_report_in_now": now.get("missed_report_in", 0),
        "absconded_now": now.get("absconded", 0),
        "terms_ending_within_30_days": now.get("terms_ending", 0),
        "sanctions": {rung: counts.get(f"sanction:{rung}", 0) for rung in rules.SANCTION_RUNGS},
        "electronic_monitoring_now": now.get("monitoring", 0),
    }
