"""Dispute indicators (DOMAIN.md §1): per-(unit, day, metric) counters for the unit and
every unit above it, plus one row per dispute for what depends on "now" (overdue)."""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from domain import rules
from domain.clock import cst_date
from domain.dispute import (
    AgreementReached,
    DeadlineExtended,
    DisputeClosed,
    DisputeRegistered,
    DisputeReturned,
    DisputeTriaged,
    DisputeWithdrawn,
    MediationFailed,
    MediationRefused,
    deadline_after_triage,
    time_limit,
)
from projections.figures import rate
from projections.readmodel import Batch, Projection, Tables, counter_table, event_day, on

# Concluded disputes counted by their outcome (the success rate's numerator and the rest).
CONCLUDED_BY_OUTCOME = {
    AgreementReached.leads_to: "concluded_agreement",
    MediationFailed.leads_to: "concluded_failure",
}


class DisputeIndicators(Projection):
    name: ClassVar[str] = "disputes"
    tables: ClassVar[tuple[str, ...]] = ("cases", "counts")
    weight: ClassVar[float] = 1.35
    # 2: `extended` (a deadline extension survives triage); the domain's outcome names.
    version: ClassVar[int] = 2

    def create_statements(self, t: Tables) -> list[str]:
        cases = t["cases"]
        return [
            f"CREATE TABLE IF NOT EXISTS {cases} (case_id TEXT PRIMARY KEY, unit TEXT NOT NULL, "
            "path TEXT NOT NULL, registered_on TEXT NOT NULL, time_limit_class TEXT NOT NULL, "
            "scope TEXT, complexity TEXT, deadline TEXT NOT NULL, outcome TEXT, "
            "open_deadline TEXT, extended INTEGER NOT NULL DEFAULT 0)",
            # Overdue now: open disputes (open_deadline set) past it, in a unit subtree.
            f"CREATE INDEX IF NOT EXISTS {cases}_overdue ON {cases} (open_deadline, path)",
            *counter_table(t),
        ]

    @on(DisputeRegistered)
    def registered(self, b: Batch, event: DisputeRegistered) -> None:
        data = event.data
        place = b.place(str(getattr(event, "unit", data.get("center_unit"))))
        registered_on = cst_date(event.timestamp)
        limit_class = rules.TIME_LIMIT_CLASS_BY_SOURCE.get(data.get("source", ""), "default")
        deadline = time_limit(registered_on, limit_class, None, data.get("scope")).isoformat()
        b.insert(
            "cases",
            "case_id",
            {
                "case_id": str(event.originator_id),
                "unit": place.unit,
                "path": place.path,
                "registered_on": registered_on.isoformat(),
                "time_limit_class": limit_class,
                "scope": data.get("scope"),
                "complexity": None,
                "deadline": deadline,
                "outcome": None,
                "open_deadline": deadline,
                "extended": 0,
            },
        )
        day = registered_on.isoformat()
        b.count("counts", place, day, "registered")
        b.count("counts", place, day, f"category:{data.get('category')}")
        if int(data.get("people_involved", 0)) >= rules.COLLECTIVE_DISPUTE_THRESHOLD:
            b.count("counts", place, day, "collective")

    @on(DisputeTriaged)
    def triaged(self, b: Batch, event: DisputeTriaged) -> None:
        case_id = str(event.originator_id)
        row = b.row("cases", "case_id", case_id)
        if row is None:
            return
        complexity = event.data.get("complexity")
        limit = time_limit(
            date.fromisoformat(row["registered_on"]),
            row["time_limit_class"],
            complexity,
            row["scope"],
        )
        deadline = deadline_after_triage(
            limit, date.fromisoformat(row["deadline"]), bool(row["extended"])
        ).isoformat()
        b.update("cases", case_id, complexity=complexity, deadline=deadline, open_deadline=deadline)

    @on(DeadlineExtended)
    def extended(self, b: Batch, event: DeadlineExtended) -> None:
        case_id = str(event.originator_id)
        if b.row("cases", "case_id", case_id) is None:
            return
        deadline = str(event.data["new_deadline"])[:10]
        b.update("cases", case_id, deadline=deadline, open_deadline=deadline, extended=1)

    @on(AgreementReached, MediationFailed, MediationRefused, DisputeWithdrawn)
    def concluded(self, b: Batch, event: Any) -> None:
        case_id = str(event.originator_id)
        row = b.row("cases", "case_id", case_id)
        if row is None:
            return
        b.update("cases", case_id, outcome=event.leads_to)
        if isinstance(event, MediationFailed) and event.data.get("referral") == "litigation":
            b.count("counts", b.place(row["unit"]), event_day(event), "referred_to_litigation")

    @on(DisputeReturned)
    def returned(self, b: Batch, event: DisputeReturned) -> None:
        row = b.row("cases", "case_id", str(event.originator_id))
        if row is not None:
            b.count("counts", b.place(row["unit"]), event_day(event), "returned")

    @on(DisputeClosed)
    def closed(self, b: Batch, event: DisputeClosed) -> None:
        case_id = str(event.originator_id)
        row = b.row("cases", "case_id", case_id)
        if row is None:
            return
        place, day = b.place(row["unit"]), event_day(event)
        # Concluded (辦結) on the day of the closing report; on time if within the limit.
        b.update("cases", case_id, open_deadline=None)
        b.count("counts", place, day, "concluded")
        if day <= row["deadline"]:
            b.count("counts", place, day, "concluded_on_time")
        metric = CONCLUDED_BY_OUTCOME.get(row["outcome"])
        if metric is not None:
            b.count("counts", place, day, metric)


def dispute_indicators(counts: dict[str, int], overdue_open: int) -> dict[str, Any]:
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
