"""Dispute indicators (DOMAIN.md §1): per-(unit, day, metric) counters for the unit and
every unit above it, plus one row per dispute for what depends on "now" (overdue).

What follows the close (回訪, 履行, 司法確認) counts in the cohort of disputes closed in the
period, on the closing day at the dispute's unit, whenever it is recorded (as the
resettlement rates count a reception's cohort)."""

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
    DisputeTurnedCriminal,
    DisputeWithdrawn,
    EarlyWarningRaised,
    FollowUpVisited,
    JudicialConfirmationRequested,
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


# A follow-up visit's satisfaction (1–5) counts as satisfied from this score up (滿意 or 非常滿意).
SATISFIED = 4


class DisputeIndicators(Projection):
    name: ClassVar[str] = "disputes"
    tables: ClassVar[tuple[str, ...]] = ("cases", "counts")
    weight: ClassVar[float] = 1.35
    # 2: `extended` (a deadline extension survives triage); the domain's outcome names.
    # 3: follow-up, performance, judicial confirmation and early-warning figures.
    version: ClassVar[int] = 3

    def create_statements(self, t: Tables) -> list[str]:
        cases = t["cases"]
        return [
            f"CREATE TABLE IF NOT EXISTS {cases} (case_id TEXT PRIMARY KEY, unit TEXT NOT NULL, "
            "path TEXT NOT NULL, registered_on TEXT NOT NULL, time_limit_class TEXT NOT NULL, "
            "scope TEXT, complexity TEXT, deadline TEXT NOT NULL, outcome TEXT, "
            "open_deadline TEXT, extended INTEGER NOT NULL DEFAULT 0, closed_on TEXT, "
            "followed_up INTEGER NOT NULL DEFAULT 0, performed INTEGER, "
            "confirmation INTEGER NOT NULL DEFAULT 0, warned TEXT NOT NULL DEFAULT '')",
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
                "closed_on": None,
                "followed_up": 0,
                "performed": None,
                "confirmation": 0,
                "warned": "",
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
        b.update("cases", case_id, open_deadline=None, closed_on=day)
        b.count("counts", place, day, "concluded")
        if day <= row["deadline"]:
            b.count("counts", place, day, "concluded_on_time")
        metric = CONCLUDED_BY_OUTCOME.get(row["outcome"])
        if metric is not None:
            b.count("counts", place, day, metric)
        if row["confirmation"] and row["outcome"] == AgreementReached.leads_to:
            b.count("counts", place, day, "agreement_confirmed")

    @on(JudicialConfirmationRequested)
    def confirmation_requested(self, b: Batch, event: JudicialConfirmationRequested) -> None:
        """司法確認 (人民調解法 §33): counted on the day requested; an agreement closed with
        one in its cohort, on the closing day."""
        case_id = str(event.originator_id)
        row = b.row("cases", "case_id", case_id)
        if row is None:
            return
        place = b.place(row["unit"])
        b.count("counts", place, event_day(event, "requested_on"), "judicial_confirmation")
        if not row["confirmation"]:
            b.update("cases", case_id, confirmation=1)
            if row["closed_on"] and row["outcome"] == AgreementReached.leads_to:
                b.count("counts", place, row["closed_on"], "agreement_confirmed")

    @on(FollowUpVisited)
    def followed_up(self, b: Batch, event: FollowUpVisited) -> None:
        """回訪 (督查回訪制度): each visit by its `visited_on`; the closed agreement's cohort
        once it has a visit, and as performed while its latest visit says so."""
        case_id = str(event.originator_id)
        row = b.row("cases", "case_id", case_id)
        if row is None or not row["closed_on"]:
            return
        place = b.place(row["unit"])
        visited_on = event_day(event, "visited_on")
        satisfaction = int(event.data.get("satisfaction") or 0)
        b.count("counts", place, visited_on, "follow_up_visit")
        b.count("counts", place, visited_on, "satisfaction_sum", satisfaction)
        if satisfaction >= SATISFIED:
            b.count("counts", place, visited_on, "satisfied_visit")
        if row["outcome"] != AgreementReached.leads_to:
            b.update("cases", case_id, followed_up=1)
            return
        closed_on = row["closed_on"]
        if not row["followed_up"]:
            b.count("counts", place, closed_on, "agreement_followed_up")
        performed = 1 if event.data.get("agreement_performed") else 0
        if row["performed"] != performed:
            # The latest visit decides, as the case's own `agreement_performed` does.
            b.count(
                "counts",
                place,
                closed_on,
                "agreement_performed",
                performed - (row["performed"] or 0),
            )
        b.update("cases", case_id, followed_up=1, performed=performed)

    @on(EarlyWarningRaised)
    def warned(self, b: Batch, event: EarlyWarningRaised) -> None:
        """預警 by risk: every warning on the day recorded; a dispute once per risk, on the
        day of its first warning of that risk (criminal_risk: the 民轉刑 risk)."""
        case_id = str(event.originator_id)
        row = b.row("cases", "case_id", case_id)
        if row is None:
            return
        place, day, risk = b.place(row["unit"]), event_day(event), str(event.data.get("risk"))
        b.count("counts", place, day, f"warning:{risk}")
        risks = [r for r in str(row["warned"]).split(",") if r]
        if risk not in risks:
            b.count("counts", place, day, f"warned_dispute:{risk}")
            b.update("cases", case_id, warned=",".join(sorted([*risks, risk])))

    @on(DisputeTurnedCriminal)
    def turned_criminal(self, b: Batch, event: DisputeTurnedCriminal) -> None:
        """民轉刑: a dispute referred as a criminal case, on the day of the referral at the
        dispute's unit (the domain records it once per dispute)."""
        row = b.row("cases", "case_id", str(event.originator_id))
        if row is None:
            return
        referred_on = date.fromisoformat(str(event.data["referred_on"]))
        b.count("counts", b.place(row["unit"]), referred_on, "turned_criminal")


def dispute_indicators(counts: dict[str, int], overdue_open: int) -> dict[str, Any]:
    agreements = counts.get("concluded_agreement", 0)
    failures = counts.get("concluded_failure", 0)
    concluded = counts.get("concluded", 0)
    visits = counts.get("follow_up_visit", 0)
    followed_up = counts.get("agreement_followed_up", 0)
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
        "follow_up_rate": rate(followed_up, agreements),
        "follow_up_visits": visits,
        "satisfaction_rate": rate(counts.get("satisfied_visit", 0), visits),
        "satisfaction_mean": rate(counts.get("satisfaction_sum", 0), visits),
        "performance_rate": rate(counts.get("agreement_performed", 0), followed_up),
        "judicial_confirmations": counts.get("judicial_confirmation", 0),
        "judicial_confirmation_rate": rate(counts.get("agreement_confirmed", 0), agreements),
        "early_warnings": {
            risk: counts.get(f"warning:{risk}", 0) for risk in rules.EARLY_WARNING_RISKS
        },
        "disputes_warned": {
            risk: counts.get(f"warned_dispute:{risk}", 0) for risk in rules.EARLY_WARNING_RISKS
        },
        "criminal_risk_disputes": counts.get("warned_dispute:criminal_risk", 0),
        "criminal_turned": counts.get("turned_criminal", 0),
    }
