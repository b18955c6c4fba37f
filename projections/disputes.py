"""Dispute indicators (DOMAIN.md §1): per-(unit, day, metric) counters for the unit and
every unit above it, plus one row per dispute for what depends on "now" (overdue).

Where a dispute counts (統一受理, 歸口辦理): its registration at the centre that registered
it; every later act where the dispute is when the act is recorded: at the centre and, once it
is handed down (分流指派), at the handling unit too, each unit of the two chains once. A
unit above both counts it once, so the province counts each dispute once.

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
    DisputeAssigned,
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
    TransferAccepted,
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
    # 4: counted at the handling unit too once handed down (`assigned_unit`), and at the
    # new centre after an accepted transfer.
    # 5: major turns into criminal cases (民轉刑 重大) counted apart.
    version: ClassVar[int] = 5

    def create_statements(self, t: Tables) -> list[str]:
        cases = t["cases"]
        return [
            f"CREATE TABLE IF NOT EXISTS {cases} (case_id TEXT PRIMARY KEY, unit TEXT NOT NULL, "
            "path TEXT NOT NULL, registered_on TEXT NOT NULL, time_limit_class TEXT NOT NULL, "
            "scope TEXT, complexity TEXT, deadline TEXT NOT NULL, outcome TEXT, "
            "open_deadline TEXT, extended INTEGER NOT NULL DEFAULT 0, closed_on TEXT, "
            "followed_up INTEGER NOT NULL DEFAULT 0, performed INTEGER, "
            "confirmation INTEGER NOT NULL DEFAULT 0, warned TEXT NOT NULL DEFAULT '', "
            "assigned_unit TEXT, assigned_path TEXT)",
            # Overdue now: open disputes (open_deadline set) past it, in a unit subtree (the
            # centre's or the handling unit's).
            f"CREATE INDEX IF NOT EXISTS {cases}_overdue ON {cases} "
            "(open_deadline, path, assigned_path)",
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
                "assigned_unit": None,
                "assigned_path": None,
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

    @on(DisputeAssigned)
    def assigned(self, b: Batch, event: DisputeAssigned) -> None:
        """歸口辦理: from now on the dispute counts at the handling unit too (a reassignment
        moves what follows, not what was counted)."""
        case_id = str(event.originator_id)
        if b.row("cases", "case_id", case_id) is None:
            return
        place = b.place(str(event.data["assigned_unit"]))
        b.update("cases", case_id, assigned_unit=place.unit, assigned_path=place.path)

    @on(TransferAccepted)
    def transferred(self, b: Batch, event: TransferAccepted) -> None:
        """A dispute moved to another centre counts there from now on (its registration
        stays where it was registered)."""
        case_id = str(event.originator_id)
        if b.row("cases", "case_id", case_id) is None:
            return
        place = b.place(str(event.data["to_unit"]))
        b.update("cases", case_id, unit=place.unit, path=place.path)

    @on(AgreementReached, MediationFailed, MediationRefused, DisputeWithdrawn)
    def concluded(self, b: Batch, event: Any) -> None:
        case_id = str(event.originator_id)
        row = b.row("cases", "case_id", case_id)
        if row is None:
            return
        b.update("cases", case_id, outcome=event.leads_to)
        if isinstance(event, MediationFailed) and event.data.get("referral") == "litigation":
            b.count("counts", _units(b, row), event_day(event), "referred_to_litigation")

    @on(DisputeReturned)
    def returned(self, b: Batch, event: DisputeReturned) -> None:
        row = b.row("cases", "case_id", str(event.originator_id))
        if row is not None:
            b.count("counts", _units(b, row), event_day(event), "returned")

    @on(DisputeClosed)
    def closed(self, b: Batch, event: DisputeClosed) -> None:
        case_id = str(event.originator_id)
        row = b.row("cases", "case_id", case_id)
        if row is None:
            return
        units, day = _units(b, row), event_day(event)
        # Concluded (辦結) on the day of the closing report; on time if within the limit.
        b.update("cases", case_id, open_deadline=None, closed_on=day)
        b.count("counts", units, day, "concluded")
        if day <= row["deadline"]:
            b.count("counts", units, day, "concluded_on_time")
        metric = CONCLUDED_BY_OUTCOME.get(row["outcome"])
        if metric is not None:
            b.count("counts", units, day, metric)
        if row["confirmation"] and row["outcome"] == AgreementReached.leads_to:
            b.count("counts", units, day, "agreement_confirmed")

    @on(JudicialConfirmationRequested)
    def confirmation_requested(self, b: Batch, event: JudicialConfirmationRequested) -> None:
        """司法確認 (人民調解法 §33): counted on the day requested; an agreement closed with
        one in its cohort, on the closing day."""
        case_id = str(event.originator_id)
        row = b.row("cases", "case_id", case_id)
        if row is None:
            return
        units = _units(b, row)
        b.count("counts", units, event_day(event, "requested_on"), "judicial_confirmation")
        if not row["confirmation"]:
            b.update("cases", case_id, confirmation=1)
            if row["closed_on"] and row["outcome"] == AgreementReached.leads_to:
                b.count("counts", units, row["closed_on"], "agreement_confirmed")

    @on(FollowUpVisited)
    def followed_up(self, b: Batch, event: FollowUpVisited) -> None:
        """回訪 (督查回訪制度): each visit by its `visited_on`; the closed agreement's cohort
        once it has a visit, and as performed while its latest visit says so."""
        case_id = str(event.originator_id)
        row = b.row("cases", "case_id", case_id)
        if row is None or not row["closed_on"]:
            return
        units = _units(b, row)
        visited_on = event_day(event, "visited_on")
        satisfaction = int(event.data.get("satisfaction") or 0)
        b.count("counts", units, visited_on, "follow_up_visit")
        b.count("counts", units, visited_on, "satisfaction_sum", satisfaction)
        if satisfaction >= SATISFIED:
            b.count("counts", units, visited_on, "satisfied_visit")
        if row["outcome"] != AgreementReached.leads_to:
            b.update("cases", case_id, followed_up=1)
            return
        closed_on = row["closed_on"]
        if not row["followed_up"]:
            b.count("counts", units, closed_on, "agreement_followed_up")
        performed = 1 if event.data.get("agreement_performed") else 0
        if row["performed"] != performed:
            # The latest visit decides, as the case's own `agreement_performed` does.
            b.count(
                "counts",
                units,
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
        units, day, risk = _units(b, row), event_day(event), str(event.data.get("risk"))
        b.count("counts", units, day, f"warning:{risk}")
        risks = [r for r in str(row["warned"]).split(",") if r]
        if risk not in risks:
            b.count("counts", units, day, f"warned_dispute:{risk}")
            b.update("cases", case_id, warned=",".join(sorted([*risks, risk])))

    @on(DisputeTurnedCriminal)
    def turned_criminal(self, b: Batch, event: DisputeTurnedCriminal) -> None:
        """民轉刑: a dispute referred as a criminal case, on the day of the referral where
        the dispute is (the domain records it once per dispute); a major one (重大刑事案件,
        the seed's count) apart too. A turn recorded before grading is not major."""
        row = b.row("cases", "case_id", str(event.originator_id))
        if row is None:
            return
        units = _units(b, row)
        referred_on = date.fromisoformat(str(event.data["referred_on"]))
        b.count("counts", units, referred_on, "turned_criminal")
        if event.data.get("grade") == "major":
            b.count("counts", units, referred_on, "turned_criminal_major")


def _units(b: Batch, row: dict[str, Any]) -> list[str]:
    """Where an act on the dispute counts now: the centre's chain and, once handed down,
    the handling unit's chain, each unit once."""
    units = dict.fromkeys(b.place(row["unit"]).chain)
    if row["assigned_unit"]:
        units.update(dict.fromkeys(b.place(row["assigned_unit"]).chain))
    return list(units)


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
        "criminal_turned_major": counts.get("turned_criminal_major", 0),
    }
