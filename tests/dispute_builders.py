"""Valid data for every dispute event type, shared by the domain, service and property tests.

The parties carry names, ID numbers and phone numbers on purpose: tests look for them
where they must never appear (logs).
"""

from __future__ import annotations

from datetime import date
from typing import Any

APPLICANT = {
    "name": "王秀英",
    "role": "applicant",
    "id_number": "32010219800101123X",
    "phone": "13912345678",
}
RESPONDENT = {
    "name": "李建国",
    "role": "respondent",
    "id_number": "320102197505054321",
    "phone": "025-86661234",
}
PERSONAL_DATA = (
    APPLICANT["name"],
    APPLICANT["id_number"],
    APPLICANT["phone"],
    RESPONDENT["name"],
    RESPONDENT["id_number"],
    RESPONDENT["phone"],
)


def registration(**changes: Any) -> dict[str, Any]:
    """A registration; without `center_unit` the case takes the unit it is opened at."""
    data: dict[str, Any] = {
        "category": "neighbourhood",
        "summary": "Water from the flat above leaks into the kitchen below.",
        "parties": [dict(APPLICANT), dict(RESPONDENT)],
        "scope": "local",
        "source": "walk_in",
        "people_involved": 2,
    }
    data.update(changes)
    return data


def event_data(event_type: str, today: date, **changes: Any) -> dict[str, Any]:
    """Data that passes the schema of `event_type`, dated `today` where it names a day."""
    day = today.isoformat()
    builders: dict[str, dict[str, Any]] = {
        "DisputeRegistered": registration(),
        "DisputeTriaged": {"complexity": "ordinary", "responsible_unit": "320102"},
        "DisputeAssigned": {
            "handling_body": "梅园新村街道人民调解委员会",
            "assigned_unit": "320102",
            "mediators": ["调解员甲"],
        },
        "MediationSessionHeld": {
            "held_on": day,
            "mediators": ["调解员甲"],
            "attendees": ["applicant", "respondent"],
            "notes": "Both sides heard.",
        },
        "HearingHeld": {"held_on": day, "notes": "Hearing at the center."},
        "PublicNoticePosted": {"posted_on": day, "notes": "Result posted."},
        "DisputeReturned": {"reason": "Needs the housing office as well."},
        "JointHandlingConvened": {"departments": ["住建局", "街道办"]},
        "DeadlineExtended": {"new_deadline": day, "reason": "Expert assessment pending."},
        "SupervisionOrdered": {"instructions": "Report progress by Friday."},
        "EarlyWarningRaised": {"risk": "escalation", "notes": "Threats were made."},
        "AgreementReached": {
            "terms": "The upstairs owner repairs the pipe and pays 800 yuan.",
            "form": "written",
            "performance_due": day,
        },
        "JudicialConfirmationRequested": {"court": "玄武区人民法院", "requested_on": day},
        "MediationFailed": {"reason": "No common ground.", "referral": "litigation"},
        "MediationRefused": {"party": "respondent", "reason": "Prefers to go to court."},
        "DisputeWithdrawn": {"reason": "Settled privately."},
        "DisputeTurnedCriminal": {
            "referred_on": day,
            "receiving_body": "police",
            "receiving_unit": "玄武分局",
            "grade": "ordinary",
        },
        "DisputeClosed": {"result_summary": "Settled by agreement."},
        "FollowUpVisited": {"visited_on": day, "satisfaction": 5, "agreement_performed": True},
        "TransferProposed": {"to_unit": "320104", "reason": "The parties live in Qinhuai."},
        "TransferAccepted": {"to_unit": "320104"},
        "TransferDeclined": {"to_unit": "320104", "reason": "Not ours."},
    }
    data = dict(builders[event_type])
    data.update(changes)
    return data
