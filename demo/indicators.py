"""The seed's province indicators computed straight from event streams.

The read models are the place to query indicators; this is the independent check the demo
uses on what it planned and on what the store holds, with DOMAIN.md's definitions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from casetrail.bootstrap import Casetrail
from casetrail.events import kind_of
from domain import rules


@dataclass
class _Case:
    kind: str
    types: list[str] = field(default_factory=list)
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Every event's data, in stream order, for the types that repeat.
    all_data: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))


def indicators(events: Iterable[tuple[str, str, str, dict[str, Any]]]) -> dict[str, Any]:
    """Province indicators from (case id, kind, event type, data) in stream order."""
    cases: dict[str, _Case] = {}
    for case_id, kind, type_, data in events:
        case = cases.setdefault(case_id, _Case(kind))
        case.types.append(type_)
        case.data.setdefault(type_, data)
        case.all_data[type_].append(data)
        if type_ == "AssistanceEnded":
            case.data["AssistanceEnded"] = data
    result: dict[str, Any] = {}
    disputes = [c for c in cases.values() if c.kind == "dispute"]
    agreements = sum("AgreementReached" in c.types for c in disputes)
    failures = sum("MediationFailed" in c.types for c in disputes)
    result["dispute"] = {
        "registered": len(disputes),
        "concluded": sum("DisputeClosed" in c.types for c in disputes),
        "success_rate": _rate(agreements, agreements + failures),
        **_after_the_close(disputes),
    }
    settled = [c for c in cases.values() if c.kind == "resettlement"]
    received = [c for c in settled if "PersonReceived" in c.types]
    placed = sum("PersonPlaced" in c.types for c in received)
    assisted = sum(
        "AssistanceCategorised" in c.types and "AssistanceActivityRecorded" in c.types
        for c in received
    )
    result["resettlement"] = {
        "received": len(received),
        "placement_rate": _rate(placed, len(received)),
        "assistance_rate": _rate(assisted, len(received)),
        "reoffending_rate_by_year": _reoffending_by_year(received),
        "at_base_now": sum(_at_base(c) for c in received),
    }
    corrected = [c for c in cases.values() if c.kind == "correction"]
    # A person re-offends once, whichever of their cases records it (人員: one ID number).
    reoffended = len(
        {
            c.data["CorrectionSubjectReceived"]["person"]["id_number"]
            for c in corrected
            if "Reoffended" in c.types
        }
    )
    result["correction"] = {
        "received": len(corrected),
        # Under correction now: no end (released on schedule, committed, died) recorded.
        "current": sum(not set(c.types) & _CORRECTION_ENDS for c in corrected),
        "completed_on_schedule": sum("CorrectionCompleted" in c.types for c in corrected),
        "reoffended": reoffended,
        "reoffending_per_mille": (
            {
                "value": round(1000 * reoffended / len(corrected), 3),
                "numerator": reoffended,
                "denominator": len(corrected),
            }
            if corrected
            else None
        ),
    }
    return result


_CORRECTION_ENDS = {"CorrectionCompleted", "SubjectCommitted", "SubjectDied"}


def _at_base(case: _Case) -> bool:
    """At a transitional base now: placed at one, and neither placed elsewhere since, nor
    the placement or the assistance ended."""
    placements = iter(case.all_data["PersonPlaced"])
    at_base = False
    for type_ in case.types:
        if type_ == "PersonPlaced":
            at_base = next(placements)["placement"] == "transitional_base"
        elif type_ in ("PlacementEnded", "AssistanceEnded"):
            at_base = False
    return at_base


def _after_the_close(disputes: list[_Case]) -> dict[str, Any]:
    """Follow-up (回訪), performance (履行), judicial confirmation (司法確認), early warnings
    (預警), turns into criminal cases (民轉刑) and collective disputes, over every dispute (no
    period)."""
    closed = [c for c in disputes if "AgreementReached" in c.types and "DisputeClosed" in c.types]
    visited = [c for c in closed if c.all_data["FollowUpVisited"]]
    visits = [v for c in disputes for v in c.all_data["FollowUpVisited"]]
    scores = [int(v["satisfaction"]) for v in visits]
    warnings = [w["risk"] for c in disputes for w in c.all_data["EarlyWarningRaised"]]
    risks = ("escalation", "collective_incident", "criminal_risk")
    return {
        "collective": sum(
            int(c.data["DisputeRegistered"]["people_involved"])
            >= rules.COLLECTIVE_DISPUTE_THRESHOLD
            for c in disputes
        ),
        "follow_up_rate": _rate(len(visited), len(closed)),
        "follow_up_visits": len(visits),
        "satisfaction_rate": _rate(sum(score >= 4 for score in scores), len(visits)),
        "satisfaction_sum": sum(scores),
        "performance_rate": _rate(
            sum(bool(c.all_data["FollowUpVisited"][-1]["agreement_performed"]) for c in visited),
            len(visited),
        ),
        "judicial_confirmations": sum(
            len(c.all_data["JudicialConfirmationRequested"]) for c in disputes
        ),
        "judicial_confirmation_rate": _rate(
            sum("JudicialConfirmationRequested" in c.types for c in closed), len(closed)
        ),
        "early_warnings": {risk: warnings.count(risk) for risk in risks},
        "disputes_warned": {
            risk: sum(
                any(w["risk"] == risk for w in c.all_data["EarlyWarningRaised"]) for c in disputes
            )
            for risk in risks
        },
        # 民轉刑: the disputes recorded as turned criminal, and the major ones (重大).
        "criminal_turned": sum("DisputeTurnedCriminal" in c.types for c in disputes),
        "criminal_turned_major": sum(
            c.data["DisputeTurnedCriminal"].get("grade") == "major"
            for c in disputes
            if "DisputeTurnedCriminal" in c.types
        ),
    }


def _reoffending_by_year(received: list[_Case]) -> dict[int, dict[str, Any]]:
    """For each year: people re-offended that year ÷ people under assistance at its start or
    received in it (a person once, whichever of their cases)."""
    spans = []
    for case in received:
        start = date.fromisoformat(case.data["PersonReceived"]["received_on"])
        end = case.data.get("AssistanceEnded")
        ended = date.fromisoformat(end["ended_on"]) if end else None
        reoffence = case.data.get("Reoffended")
        person = case.data["ReleaseNotified"]["person"]["id_number"]
        offended = date.fromisoformat(reoffence["on"]) if reoffence else None
        spans.append((start, ended, offended, person))
    if not spans:
        return {}
    years = range(min(s[0].year for s in spans), max(s[0].year for s in spans) + 1)
    result = {}
    for year in years:
        first, last = date(year, 1, 1), date(year, 12, 31)
        under, offenders = set(), set()
        for start, ended, offence, person in spans:
            if start <= last and (ended is None or ended >= first):
                under.add(person)
                if offence is not None and offence.year == year:
                    offenders.add(person)  # a person once a year, whichever case records it
        result[year] = _rate(len(offenders), len(under))
    return result


def _rate(numerator: int, denominator: int) -> dict[str, Any]:
    value = round(numerator / denominator, 4) if denominator else None
    return {"value": value, "numerator": numerator, "denominator": denominator}


def stored_events(
    ct: Casetrail, batch: int = 5000
) -> Iterable[tuple[str, str, str, dict[str, Any]]]:
    """Every case event in the store, in append order."""
    after = 0
    while True:
        notifications = ct.app.recorder.select_notifications(
            start=after, limit=batch, inclusive_of_start=False
        )
        if not notifications:
            return
        for notification in notifications:
            event: Any = ct.app.mapper.to_domain_event(notification)
            yield str(event.originator_id), kind_of(event), type(event).__name__, event.data
        after = notifications[-1].id
