"""The case list: one row per case of every kind, for `GET /cases` and its filters.

`deadline` is the date that makes a case overdue once it has passed (a dispute's time
limit while not closed, a released person's handover window until received, a correction
subject's report-in window until reported in); it is NULL when nothing is due, and
`overdue` is decided at query time against the clock.
"""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace
from typing import Any, ClassVar

from domain import rules
from domain.case import CaseEvent, CaseOpened
from domain.clock import add_days, cst_date
from domain.dispute import time_limit_days
from projections.engine import UNIT_DEPTH, Batch, Projection, Tables

UNIT_COLUMNS = [f"u{d}" for d in range(UNIT_DEPTH)]

# The status each event leaves its case in, by kind (the domain's own transitions).
STATUS_AFTER: dict[str, dict[str, str]] = {
    "dispute": {
        "DisputeRegistered": "registered",
        "DisputeTriaged": "triaged",
        "DisputeAssigned": "assigned",
        "MediationSessionHeld": "in_mediation",
        "DisputeReturned": "returned",
        "JointHandlingConvened": "assigned",
        "AgreementReached": "agreement_reached",
        "MediationFailed": "mediation_failed",
        "MediationRefused": "refused",
        "DisputeWithdrawn": "withdrawn",
        "DisputeClosed": "closed",
    },
    "resettlement": {
        "ReleaseNotified": "notified",
        "PersonReleased": "released",
        "PersonReceived": "received",
        "ContactLost": "contact_lost",
        "ContactRestored": "received",
        "AssistanceEnded": "closed",
    },
    "correction": {
        "CorrectionSubjectReceived": "received",
        "SubjectReportedIn": "under_correction",
        "CorrectionCompleted": "completed",
        "SubjectCommitted": "committed",
        "SubjectDied": "died",
    },
}
# Events that move a case to another handling unit.
MOVES = {"AssistanceDelegated", "ResidenceChanged"}


class CaseList(Projection):
    name: ClassVar[str] = "cases"
    tables: ClassVar[tuple[str, ...]] = ("list", "terms")

    def create_statements(self, t: Tables) -> list[str]:
        cases, terms = t["list"], t["terms"]
        units = ", ".join(f"{c} TEXT" for c in UNIT_COLUMNS)
        statements = [
            f"CREATE TABLE IF NOT EXISTS {cases} (case_id TEXT PRIMARY KEY, kind TEXT NOT NULL, "
            f"status TEXT NOT NULL, unit TEXT NOT NULL, {units}, category TEXT, "
            "opened_at TEXT NOT NULL, last_event_at TEXT NOT NULL, deadline TEXT, "
            "minor INTEGER NOT NULL DEFAULT 0, version BIGINT NOT NULL, position BIGINT NOT NULL, "
            "state TEXT NOT NULL, display TEXT NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {cases}_opened ON {cases} (kind, opened_at)",
            f"CREATE INDEX IF NOT EXISTS {cases}_deadline ON {cases} (deadline)",
            f"CREATE TABLE IF NOT EXISTS {terms} (term TEXT NOT NULL, case_id TEXT NOT NULL, "
            "PRIMARY KEY (term, case_id))",
        ]
        for column in UNIT_COLUMNS:
            statements.append(
                f"CREATE INDEX IF NOT EXISTS {cases}_{column} ON {cases} ({column}, kind, opened_at)"
            )
        return statements

    def apply(self, b: Batch, event: CaseEvent, kind: str, position: int) -> None:
        cases = b.t["list"]
        case_id = str(event.originator_id)
        name = type(event).__name__
        recorded = event.timestamp.isoformat()
        if isinstance(event, CaseOpened):
            self._open(b, event, kind, position)
            return
        row = b.one(
            f"SELECT state, category, deadline, unit FROM {cases} WHERE case_id = ?", (case_id,)
        )
        if row is None:
            return  # its opening event was not a case this build knows
        state: dict[str, Any] = _loads(row["state"])
        status = STATUS_AFTER.get(kind, {}).get(name)
        category = row["category"]
        deadline = row["deadline"]
        data = event.data
        if kind == "dispute":
            deadline = _dispute_deadline(state, name, data, deadline)
        elif kind == "resettlement":
            if name == "PersonReleased":
                deadline = add_days(
                    date.fromisoformat(data["released_on"]), rules.HANDOVER_WINDOW_DAYS
                ).isoformat()
            elif name in ("PersonReceived", "AssistanceEnded"):
                deadline = None
            elif name == "AssistanceCategorised":
                category = data.get("category", category)
        elif kind == "correction" and name in (
            "SubjectReportedIn",
            "CorrectionCompleted",
            "SubjectCommitted",
            "SubjectDied",
        ):
            deadline = None
        sets = [
            "last_event_at = ?",
            "version = ?",
            "position = ?",
            "deadline = ?",
            "category = ?",
            "state = ?",
        ]
        params: list[Any] = [
            recorded,
            event.originator_version,
            position,
            deadline,
            category,
            _dumps(state),
        ]
        if status is not None:
            sets.append("status = ?")
            params.append(status)
        if name in MOVES and data.get("to_unit"):
            place = b.place(data["to_unit"])
            sets.append("unit = ?")
            params.append(place.unit)
            for column, code in zip(UNIT_COLUMNS, place.columns(), strict=True):
                sets.append(f"{column} = ?")
                params.append(code)
        b.execute(f"UPDATE {cases} SET {', '.join(sets)} WHERE case_id = ?", (*params, case_id))

    def _open(self, b: Batch, event: CaseEvent, kind: str, position: int) -> None:
        cases, terms = b.t["list"], b.t["terms"]
        case_id = str(event.originator_id)
        data = event.data
        unit = getattr(event, "unit", None) or data.get("center_unit")
        place = b.place(str(unit))
        state: dict[str, Any] = {}
        category = None
        deadline = None
        minor = 0
        display: dict[str, Any]
        summary = ""
        if kind == "dispute":
            names = [str(p.get("name", "")) for p in data.get("parties", [])]
            identifiers = [
                str(p["id_number"]) for p in data.get("parties", []) if p.get("id_number")
            ]
            category = data.get("category")
            summary = str(data.get("summary", ""))
            registered_on = cst_date(event.timestamp)
            state = {
                "registered_on": registered_on.isoformat(),
                "time_limit_class": rules.TIME_LIMIT_CLASS_BY_SOURCE.get(
                    data.get("source", ""), "default"
                ),
                "scope": data.get("scope"),
                "complexity": None,
            }
            deadline = _limit(state)
            display = {"names": names, "summary": summary}
        else:
            person = data.get("person") or {}
            names = [str(person.get("name", ""))] if person.get("name") else []
            identifiers = [str(person["id_number"])] if person.get("id_number") else []
            if kind == "correction":
                category = data.get("correction_type")
                effective = data.get("decision_effective_on")
                if effective:
                    deadline = add_days(
                        date.fromisoformat(effective), rules.REPORT_IN_DAYS
                    ).isoformat()
                minor = int(_is_minor(person, data))
            display = {"names": names}
        b.execute(
            f"INSERT INTO {cases} (case_id, kind, status, unit, {', '.join(UNIT_COLUMNS)}, "
            "category, opened_at, last_event_at, deadline, minor, version, position, state, "
            f"display) VALUES ({', '.join('?' * (UNIT_DEPTH + 13))}) "
            "ON CONFLICT (case_id) DO NOTHING",
            (
                case_id,
                kind,
                STATUS_AFTER.get(kind, {}).get(type(event).__name__, "open"),
                place.unit,
                *place.columns(),
                category,
                event.timestamp.isoformat(),
                event.timestamp.isoformat(),
                deadline,
                minor,
                event.originator_version,
                position,
                _dumps(state),
                b.privacy.seal(display),
            ),
        )
        rows = [
            (term, case_id) for term in sorted(b.privacy.index_terms(names, identifiers, summary))
        ]
        b.cur.executemany(
            f"INSERT INTO {terms} (term, case_id) VALUES (?, ?) ON CONFLICT DO NOTHING", rows
        )


def _dispute_deadline(
    state: dict[str, Any], name: str, data: dict[str, Any], deadline: str | None
) -> str | None:
    if name == "DisputeTriaged":
        state["complexity"] = data.get("complexity")
        return _limit(state)
    if name == "DeadlineExtended":
        return str(data["new_deadline"])[:10]
    if name == "DisputeClosed":
        return None
    return deadline


def _limit(state: dict[str, Any]) -> str:
    """The dispute's time limit, by the domain's own rule table."""
    case = SimpleNamespace(**state)
    return add_days(date.fromisoformat(state["registered_on"]), time_limit_days(case)).isoformat()


def _is_minor(person: dict[str, Any], data: dict[str, Any]) -> bool:
    from domain.clock import age_on

    birth, offence = person.get("birth_date"), data.get("offence_date")
    if not birth or not offence:
        return False
    return age_on(date.fromisoformat(birth), date.fromisoformat(offence)) < rules.ADULT_AGE


def _dumps(value: dict[str, Any]) -> str:
    import json

    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _loads(text: str | None) -> dict[str, Any]:
    import json

    return dict(json.loads(text)) if text else {}
