"""The one table of deadlines: for each kind of deadline, what starts its clock, what stops
it, how long before it falls due a warning is given, and who must act.

Every due day comes from the case kinds' own rules (`time_limit` and the extensions kept in
`Dispute.deadline`, `handover_due`, `report_in_due`, ...); this module only reads a case's
replayed state and says, for a day, where each deadline stands:

- `upcoming`: running, not yet within its warning lead;
- `due_soon`: running, due within the lead (a warning is due);
- `overdue`: running and past its due day (a breach);
- `met`: stopped by the act it waited for;
- `moot`: stopped because the case ended otherwise (closed, committed, died, ...).

A deadline is named by (type, ref, due): `ref` tells apart several deadlines of one type on
a case (a leave by its first day, a monitoring grant by its number); a new due day (an
extension) is a new deadline, and the old one is resolved as `extended`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from domain import rules
from domain.clock import add_days
from domain.correction import report_in_due
from domain.dispute import judicial_confirmation_due
from domain.resettlement import handover_due
from domain.roles import CASEWORKER, SUPERVISOR

UPCOMING = "upcoming"
DUE_SOON = "due_soon"
OVERDUE = "overdue"
MET = "met"
MOOT = "moot"
STATES = (UPCOMING, DUE_SOON, OVERDUE, MET, MOOT)
RUNNING_STATES = (UPCOMING, DUE_SOON, OVERDUE)

CORRECTION_ENDED = frozenset({"completed", "committed", "died"})


@dataclass(frozen=True)
class Deadline:
    """One deadline of one case, as its replayed state gives it (no day needed)."""

    type: str
    ref: str
    due: date
    stopped: str | None = None  # None while running; MET or MOOT

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.type, self.ref, self.due.isoformat())


@dataclass(frozen=True)
class DeadlineType:
    """A row of the table."""

    name: str
    kind: str
    term: str
    starts: str
    stops: str
    moot_when: str
    lead_days: int
    must_act: str
    source: str
    of: Callable[[Any], list[Deadline]]

    def catalogue(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "term": self.term,
            "starts": self.starts,
            "stops": self.stops,
            "moot_when": self.moot_when,
            "lead_days": self.lead_days,
            "must_act": self.must_act,
            "source": self.source,
        }


# --- what each deadline reads of its case ------------------------------------------------


def _dispute_time_limit(case: Any) -> list[Deadline]:
    # `deadline` is the rule table's limit (court referral included) after triage and
    # any supervisor's extension (domain.dispute.time_limit, deadline_after_triage).
    return [Deadline("dispute_time_limit", "", case.deadline, MET if case.closed_on else None)]


def _judicial_confirmation(case: Any) -> list[Deadline]:
    effective = getattr(case, "agreement_effective_on", None)
    if case.outcome != "agreement_reached" or effective is None:
        return []
    done = MET if case.judicial_confirmation_requested_on is not None else None
    return [Deadline("judicial_confirmation", "", judicial_confirmation_due(effective), done)]


def _follow_up(case: Any) -> list[Deadline]:
    if case.closed_on is None:
        return []
    due = add_days(case.closed_on, rules.FOLLOW_UP_DAYS)
    return [Deadline("follow_up", "", due, MET if case.follow_ups > 0 else None)]


def _handover(case: Any) -> list[Deadline]:
    if case.released_on is None:
        return []
    due = handover_due(case.released_on)
    if case.received_on is not None:
        return [Deadline("handover", "", due, MET)]
    return [Deadline("handover", "", due, MOOT if case.status == "closed" else None)]


def _report_in(case: Any) -> list[Deadline]:
    due = report_in_due(case.decision_effective_on)
    if case.reported_in_on is not None:
        return [Deadline("report_in", "", due, MET)]
    return [Deadline("report_in", "", due, MOOT if case.status in CORRECTION_ENDED else None)]


def _leave_return(case: Any) -> list[Deadline]:
    ended = case.status in CORRECTION_ENDED
    result = []
    for leave in case.leaves:
        if leave["status"] == "returned":
            stopped: str | None = MET
        elif leave["status"] == "approved":
            stopped = MOOT if ended else None
        else:
            continue  # requested or denied: nobody is away
        result.append(Deadline("leave_return", leave["from"].isoformat(), leave["to"], stopped))
    return result


def _monitoring_end(case: Any) -> list[Deadline]:
    monitoring = case.monitoring
    if monitoring is None:
        return []
    # The latest grant only: an earlier one was ended or had lapsed when this one started.
    ref = str(case.monitoring_grants)
    if monitoring["ended_on"] is not None:
        return [Deadline("monitoring_end", ref, monitoring["until"], MET)]
    stopped = MOOT if case.status in CORRECTION_ENDED else None
    return [Deadline("monitoring_end", ref, monitoring["until"], stopped)]


def _term_end(case: Any) -> list[Deadline]:
    if case.status == "completed":
        return [Deadline("term_end", "", case.term_end, MET)]
    return [
        Deadline("term_end", "", case.term_end, MOOT if case.status in CORRECTION_ENDED else None)
    ]


DEADLINE_TYPES: dict[str, DeadlineType] = {
    t.name: t
    for t in (
        DeadlineType(
            "dispute_time_limit",
            "dispute",
            "限期辦結",
            "DisputeRegistered (the registration day); DisputeTriaged sets the limit, "
            "DeadlineExtended moves it",
            "DisputeClosed",
            "never: a dispute is always closed",
            3,
            CASEWORKER,
            "seed 五是限期辦結; rules.MEDIATION_TIME_LIMITS",
            _dispute_time_limit,
        ),
        DeadlineType(
            "judicial_confirmation",
            "dispute",
            "司法確認",
            "AgreementReached (the day the agreement takes effect)",
            "JudicialConfirmationRequested",
            "never",
            5,
            CASEWORKER,
            "人民調解法 §33; rules.JUDICIAL_CONFIRMATION_WINDOW_DAYS",
            _judicial_confirmation,
        ),
        DeadlineType(
            "follow_up",
            "dispute",
            "回訪",
            "DisputeClosed (the closing day)",
            "FollowUpVisited",
            "never",
            5,
            CASEWORKER,
            "seed: 督查回訪制度; rules.FOLLOW_UP_DAYS",
            _follow_up,
        ),
        DeadlineType(
            "handover",
            "resettlement",
            "銜接",
            "PersonReleased (the release day)",
            "PersonReceived",
            "AssistanceEnded before reception",
            2,
            CASEWORKER,
            "the brief; rules.HANDOVER_WINDOW_DAYS",
            _handover,
        ),
        DeadlineType(
            "report_in",
            "correction",
            "報到",
            "CorrectionSubjectReceived (the day the decision takes effect)",
            "SubjectReportedIn",
            "correction ended (committed, died) before the report-in",
            2,
            CASEWORKER,
            "社區矯正法 §21; rules.REPORT_IN_DAYS",
            _report_in,
        ),
        DeadlineType(
            "leave_return",
            "correction",
            "銷假 (逾期不歸)",
            "LeaveApproved (the leave's last day is due)",
            "LeaveReturned",
            "correction ended during the leave",
            1,
            CASEWORKER,
            "the brief; rules.LEAVE_MAX_DAYS",
            _leave_return,
        ),
        DeadlineType(
            "monitoring_end",
            "correction",
            "電子定位期滿",
            "ElectronicMonitoringStarted (the grant's `until`)",
            "ElectronicMonitoringEnded or a new grant",
            "correction ended",
            7,
            SUPERVISOR,
            "the brief; rules.ELECTRONIC_MONITORING_MAX_MONTHS",
            _monitoring_end,
        ),
        DeadlineType(
            "term_end",
            "correction",
            "矯正期滿",
            "CorrectionSubjectReceived (`term_end`)",
            "CorrectionCompleted",
            "committed or died",
            rules.TERM_ENDING_SOON_DAYS,
            CASEWORKER,
            "the brief; rules.TERM_ENDING_SOON_DAYS",
            _term_end,
        ),
    )
}


def lead_days(type_name: str, leads: Mapping[str, int] | None = None) -> int:
    """The warning lead of a deadline type: the table's, unless configured otherwise."""
    if leads is not None and type_name in leads:
        return leads[type_name]
    return DEADLINE_TYPES[type_name].lead_days


def state_on(deadline: Deadline, today: date, lead: int) -> str:
    if deadline.stopped is not None:
        return deadline.stopped
    if today > deadline.due:
        return OVERDUE
    if today >= add_days(deadline.due, -lead):
        return DUE_SOON
    return UPCOMING


def schedule_of(case: Any) -> list[Deadline]:
    """Every deadline of a case (running or stopped), from its replayed state."""
    result: list[Deadline] = []
    for deadline_type in DEADLINE_TYPES.values():
        if deadline_type.kind == case.kind:
            result.extend(deadline_type.of(case))
    return result


@dataclass(frozen=True)
class DeadlineState:
    """A deadline and where it stands on a day."""

    type: str
    ref: str
    due: date
    state: str
    must_act: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.type, self.ref, self.due.isoformat())


def deadlines_of(
    case: Any, today: date, leads: Mapping[str, int] | None = None
) -> list[DeadlineState]:
    """Where each deadline of `case` stands on `today` (CST)."""
    return [
        DeadlineState(
            d.type,
            d.ref,
            d.due,
            state_on(d, today, lead_days(d.type, leads)),
            DEADLINE_TYPES[d.type].must_act,
        )
        for d in schedule_of(case)
    ]


def parse_leads(text: str) -> dict[str, int]:
    """`report_in=3,term_end=20` → {"report_in": 3, "term_end": 20}; unknown types and
    negative or non-numeric leads are refused (ValueError)."""
    leads: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in DEADLINE_TYPES:
            raise ValueError(f"'{item}' is not TYPE=DAYS with a type of {sorted(DEADLINE_TYPES)}")
        days = int(value)
        if days < 0:
            raise ValueError(f"'{item}': a lead is zero or more days")
        leads[name] = days
    return leads


def catalogue() -> dict[str, Any]:
    """The table as JSON."""
    return {name: t.catalogue() for name, t in DEADLINE_TYPES.items()}
