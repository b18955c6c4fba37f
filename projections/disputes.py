"""Dispute indicators (DOMAIN.md §1): per-(unit, day, metric) counters for the unit and
every unit above it, plus one row per dispute for what depends on "now" (overdue)."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace
from typing import Any, ClassVar

from domain import rules
from domain.case import CaseEvent
from domain.clock import add_days, cst_date
from domain.dispute import time_limit_days
from projections.engine import Batch, Projection, Tables, counter_table, event_day

OUTCOME_OF = {
    "AgreementReached": "agreement",
    "MediationFailed": "failure",
    "MediationRefused": "refusal",
    "DisputeWithdrawn": "withdrawal",
}


class DisputeIndicators(Projection):
    name: ClassVar[str] = "disputes"
    tables: ClassVar[tuple[str, ...]] = ("cases", "counts")
    weight: ClassVar[float] = 1.35
    kinds: ClassVar[frozenset[str] | None] = frozenset({"dispute"})

    def create_statements(self, t: Tables) -> list[str]:
        cases = t["cases"]
        return [
            f"CREATE TABLE IF NOT EXISTS {cases} (case_id TEXT PRIMARY KEY, unit TEXT NOT NULL, "
            "path TEXT NOT NULL, registered_on TEXT NOT NULL, time_limit_class TEXT NOT NULL, "
            "scope TEXT, complexity TEXT, deadline TEXT NOT NULL, outcome TEXT, "
            "open_deadline TEXT)",
            # Overdue now: open disputes (open_deadline set) past it, in a unit subtree.
            f"CREATE INDEX IF NOT EXISTS {cases}_overdue ON {cases} (open_deadline, path)",
            *counter_table(t),
        ]

    def apply(self, b: Batch, event: CaseEvent, kind: str, position: int) -> None:
        if kind != "dispute":
            return
        case_id = str(event.originator_id)
        name = type(event).__name__
        data = event.data
        if name == "DisputeRegistered":
            place = b.place(str(getattr(event, "unit", data.get("center_unit"))))
            registered_on = cst_date(event.timestamp)
            limit_class = rules.TIME_LIMIT_CLASS_BY_SOURCE.get(data.get("source", ""), "default")
            case = SimpleNamespace(
                time_limit_class=limit_class, complexity=None, scope=data.get("scope")
            )
            deadline = add_days(registered_on, time_limit_days(case)).isoformat()
            b.insert(
                "cases",
                "case_id",
                {
                    "case_id": case_id,
                    "unit": place.unit,
                    "path": place.path,
                    "registered_on": registered_on.isoformat(),
                    "time_limit_class": limit_class,
                    "scope": data.get("scope"),
                    "complexity": None,
                    "deadline": deadline,
                    "outcome": None,
                    "open_deadline": deadline,
                },
            )
            day = registered_on.isoformat()
            b.count("counts", place, day, "registered")
            b.count("counts", place, day, f"category:{data.get('category')}")
            if int(data.get("people_involved", 0)) >= rules.COLLECTIVE_DISPUTE_THRESHOLD:
                b.count("counts", place, day, "collective")
            return
        row = b.row("cases", "case_id", case_id)
        if row is None:
            return
        place = b.place(row["unit"])
        day = event_day(event)
        if name == "DisputeTriaged":
            case = SimpleNamespace(
                time_limit_class=row["time_limit_class"],
                complexity=data.get("complexity"),
                scope=row["scope"],
            )
            deadline = add_days(
                date.fromisoformat(row["registered_on"]), time_limit_days(case)
            ).isoformat()
            b.update(
                "cases",
                case_id,
                complexity=data.get("complexity"),
                deadline=deadline,
                open_deadline=deadline,
            )
        elif name == "DeadlineExtended":
            deadline = str(data["new_deadline"])[:10]
            b.update("cases", case_id, deadline=deadline, open_deadline=deadline)
        elif name in OUTCOME_OF:
            b.update("cases", case_id, outcome=OUTCOME_OF[name])
            if name == "MediationFailed" and data.get("referral") == "litigation":
                b.count("counts", place, day, "referred_to_litigation")
        elif name == "DisputeReturned":
            b.count("counts", place, day, "returned")
        elif name == "DisputeClosed":
            # Concluded (辦結) on the day of the closing report; on time if within the limit.
            b.update("cases", case_id, open_deadline=None)
            b.count("counts", place, day, "concluded")
            if day <= row["deadline"]:
                b.count("counts", place, day, "concluded_on_time")
            outcome = row["outcome"]
            if outcome in ("agreement", "failure"):
                b.count("counts", place, day, f"concluded_{outcome}")


def dispute_indicators(counts: dict[str, int], overdue_open: int) -> dict[str, Any]:
    from projections.queries import rate

    agreements = counts.get("concluded_agreement", 0)
    failures = counts.get("concluded_failure", 0)
    concluded = counts.get("concluded", 0)
    return {
        "registered": counts.get("registered", 0),
        "concluded": concluded,
        "success_rate": rate(agreements, agreements + failures),
        "on_time_rate": rate(counts.get("concluded_on_time", 0), concluded),
        "overdue_open": overdue_open,
        "returns": counts.get("returned", 0),
        "referrals_to_litigation": counts.get("referred_to_litigation", 0),
        "collective": counts.get("collective", 0),
        "by_category": {
            key.split(":", 1)[1]: n
            for key, n in sorted(counts.items())
            if key.startswith("category:") and n
        },
    }
