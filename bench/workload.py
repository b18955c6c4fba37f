"""The append workload: dispute cases of ten events each, valid under every rule, the same
for the HTTP API, the application service and the bare-library baseline."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from domain.clock import SystemClock, cst_date

UNIT = "320102"
EVENTS_PER_CASE = 10


def opening() -> tuple[str, dict[str, Any]]:
    return "DisputeRegistered", {
        "center_unit": UNIT,
        "category": "neighbourhood",
        "summary": "相邻双方因宅基地界址发生争执",
        "parties": [
            {"name": "王建国", "role": "applicant", "phone": "13800000000"},
            {"name": "李秀英", "role": "respondent"},
        ],
        "scope": "local",
        "source": "walk_in",
        "people_involved": 2,
    }


def appends(today: date | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """The nine events after the opening one."""
    day = (today or cst_date(SystemClock().now())).isoformat()
    yield "DisputeTriaged", {"complexity": "ordinary", "responsible_unit": UNIT}
    yield (
        "DisputeAssigned",
        {
            "handling_body": "玄武区人民调解委员会",
            "assigned_unit": UNIT,
            "mediators": ["张伟"],
        },
    )
    for _ in range(5):
        yield "MediationSessionHeld", session(day)
    yield (
        "AgreementReached",
        {
            "terms": "双方确认界址，被申请人拆除越界部分",
            "form": "written",
            "performance_due": day,
        },
    )
    yield "DisputeClosed", {"result_summary": "调解成功，已制作调解协议书"}


def session(day: str) -> dict[str, Any]:
    return {
        "held_on": day,
        "mediators": ["张伟"],
        "attendees": ["申请人", "被申请人"],
        "notes": "组织双方面对面协商",
    }
