"""Community-correction indicators (DOMAIN.md §3), upcoming term ends and report-in windows.

Counters per (unit, day, metric) for what happened in a period; one row per subject for
what depends on "now" (current, 漏管, absconded, monitoring, terms ending soon, report-in
windows still open). Each case's stays (projections.population: received, moved, ended)
give the people under correction on any day: the re-offending ‰ for a period is the people
who re-offended in it ÷ the people under correction at its start, received in it or moved in
(each once). A person is one person across their cases (the keyed hash of their ID number,
`Privacy.person_key`): re-offended once ever, on their earliest offence in any case.
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from domain import rules
from domain.case import CaseEvent, known_date
from domain.correction import (
    CorrectionCompleted,
    CorrectionSubjectReceived,
    ElectronicMonitoringEnded,
    ElectronicMonitoringStarted,
    PublicSecurityPenaltyProposed,
    Reoffended,
    ReprimandIssued,
    ResidenceChanged,
    RevocationProposed,
    SanctionEvent,
    SubjectAbsconded,
    SubjectCommitted,
    SubjectDied,
    SubjectLocated,
    SubjectReportedIn,
    TransferAccepted,
    WarningIssued,
    first_reoffence,
    is_minor,
    report_in_due,
)
from projections.figures import per_mille, rate
from projections.population import (
    Population,
    received_statements,
    stay_begun,
    stay_ended,
    stay_moved,
    stays_statements,
)
from projections.readmodel import (
    Batch,
    Place,
    Projection,
    Tables,
    counter_table,
    event_day,
    on,
    subtree_range,
)


def minor_at_offence(data: dict[str, Any]) -> bool:
    """The domain's minority rule over a received subject's recorded data (False where a
    date is missing)."""
    birth, offence = (data.get("person") or {}).get("birth_date"), data.get("offence_date")
    born, offended = known_date(birth), known_date(offence)  # None: erased
    if born is None or offended is None:
        return False
    return is_minor(born, offended)


def report_due(data: dict[str, Any]) -> str | None:
    """The last day to report in, from the decision's effective day (if recorded)."""
    effective = data.get("decision_effective_on")
    return report_in_due(date.fromisoformat(effective)).isoformat() if effective else None


class CorrectionIndicators(Projection):
    name: ClassVar[str] = "correction"
    search_keyed: ClassVar[bool] = True
    tables: ClassVar[tuple[str, ...]] = ("subjects", "reoffenders", "stays", "counts")
    weight: ClassVar[float] = 0.1
    # 2: `active_delta`/`moved_in` counters for the ‰'s population; a re-offence on its
    # earliest day; report-in windows (`window_due`, `report_moot`, late report-ins).
    # 3: a person re-offends once across their cases (`person`, `reoffenders`).
    # 4: the ‰'s population counts people: `stays` instead of `active_delta`/`moved_in`,
    # each from the decision taking effect.
    version: ClassVar[int] = 4

    def create_statements(self, t: Tables) -> list[str]:
        subjects, reoffenders = t["subjects"], t["reoffenders"]
        return [
            f"CREATE TABLE IF NOT EXISTS {subjects} (case_id TEXT PRIMARY KEY, unit TEXT NOT NULL, "
            "path TEXT NOT NULL, received_on TEXT NOT NULL, received_unit TEXT NOT NULL, "
            "received_path TEXT NOT NULL, active INTEGER NOT NULL, term_end TEXT, "
            "active_term_end TEXT, report_due TEXT, window_due TEXT, "
            "reported INTEGER NOT NULL DEFAULT 0, report_moot INTEGER NOT NULL DEFAULT 0, "
            "absconded INTEGER NOT NULL DEFAULT 0, monitoring_until TEXT, "
            "minor INTEGER NOT NULL DEFAULT 0, person TEXT, stay INTEGER NOT NULL DEFAULT 0)",
            # Each person's earliest re-offence in any of their cases, and where it counted.
            f"CREATE TABLE IF NOT EXISTS {reoffenders} (person TEXT PRIMARY KEY, "
            "reoffended_on TEXT NOT NULL, unit TEXT NOT NULL, case_id TEXT NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {subjects}_active ON {subjects} (active, path)",
            f"CREATE INDEX IF NOT EXISTS {subjects}_term ON {subjects} (active_term_end, path)",
            f"CREATE INDEX IF NOT EXISTS {subjects}_report ON {subjects} (report_due, path)",
            f"CREATE INDEX IF NOT EXISTS {subjects}_absconded ON {subjects} (absconded, path)",
            f"CREATE INDEX IF NOT EXISTS {subjects}_monitoring ON {subjects} (monitoring_until, path)",
            *received_statements(subjects),
            *stays_statements(t),
            *counter_table(t),
        ]

    @on(CorrectionSubjectReceived)
    def received(self, b: Batch, event: CorrectionSubjectReceived) -> None:
        data = event.data
        place = b.place(str(getattr(event, "unit", "")))
        received_on = event_day(event)
        term_end = data.get("term_end")
        case_id = str(event.originator_id)
        # Under correction from the decision taking effect (gap 14): a re-offence between it
        # and the day the reception was recorded has the person in its period's population.
        effective = str(data.get("decision_effective_on") or received_on)[:10]
        begun = min(effective, received_on)
        person = b.privacy.person_key((data.get("person") or {}).get("id_number"))
        opened = {"case_id": case_id, "stay": 0, "person": person}
        stay = stay_begun(b, opened, place, begun, None)
        b.insert(
            "subjects",
            "case_id",
            {
                "case_id": str(event.originator_id),
                "unit": place.unit,
                "path": place.path,
                "received_on": received_on,
                "received_unit": place.unit,
                "received_path": place.path,
                "active": 1,
                "term_end": term_end,
                "active_term_end": term_end,
                "report_due": report_due(data),
                "window_due": report_due(data),
                "reported": 0,
                "report_moot": 0,
                "absconded": 0,
                "monitoring_until": None,
                "minor": int(minor_at_offence(data)),
                "person": person,
                "stay": stay,
            },
        )
        b.count("counts", place, received_on, "received")

    def apply(self, b: Batch, event: CaseEvent, kind: str, position: int) -> None:
        """A subject's row is read once for every later event it has a handler for."""
        handler = self.handlers.get(type(event))
        if handler is None:
            return
        if isinstance(event, CorrectionSubjectReceived):
            handler(self, b, event)
            return
        case_id = str(event.originator_id)
        row = b.row("subjects", "case_id", case_id)
        if row is None:
            return
        changes: dict[str, Any] = {}
        handler(self, b, event, row, changes)
        b.update("subjects", case_id, **changes)

    @on(SubjectReportedIn)
    def reported_in(
        self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]
    ) -> None:
        reported_on = event_day(event, "reported_on")
        changes.update(reported=1, report_due=None)
        b.count("counts", b.place(row["unit"]), reported_on, "reported_in")
        due = row["window_due"]
        # On-time report-in rate: over the cohort received, on its day and unit.
        on_time = due is None or reported_on <= due
        b.count(
            "counts",
            b.place(row["received_unit"]),
            row["received_on"],
            "received_reported_on_time" if on_time else "received_reported_late",
        )

    @on(CorrectionCompleted, SubjectCommitted, SubjectDied)
    def ended(self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]) -> None:
        changes.update(
            active=0, active_term_end=None, report_due=None, monitoring_until=None, absconded=0
        )
        day = event_day(event, "on")
        # Counted by the status the correction ends in (completed, committed, died).
        b.count("counts", b.place(row["unit"]), day, event.leads_to)
        if row["active"]:
            stay_ended(b, row, day)
        if not row["reported"] and row["window_due"] and day <= row["window_due"]:
            # Ended within the report-in window: neither on time nor missed.
            changes["report_moot"] = 1

    @on(ReprimandIssued, WarningIssued, PublicSecurityPenaltyProposed, RevocationProposed)
    def sanctioned(
        self, b: Batch, event: SanctionEvent, row: dict[str, Any], changes: dict[str, Any]
    ) -> None:
        b.count("counts", b.place(row["unit"]), event_day(event, "on"), f"sanction:{event.rung}")

    @on(SubjectAbsconded)
    def absconded(self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]) -> None:
        changes["absconded"] = 1

    @on(SubjectLocated)
    def located(self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]) -> None:
        changes["absconded"] = 0

    @on(ElectronicMonitoringStarted)
    def monitored(self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]) -> None:
        changes["monitoring_until"] = str(event.data.get("until", ""))[:10] or None

    @on(ElectronicMonitoringEnded)
    def unmonitored(
        self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]
    ) -> None:
        changes["monitoring_until"] = None

    @on(ResidenceChanged, TransferAccepted)
    def moved(self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]) -> None:
        if event.data.get("to_unit"):
            old, new = b.place(row["unit"]), b.place(event.data["to_unit"])
            changes.update(unit=new.unit, path=new.path)
            if row["active"]:
                # Under correction in the new subtree from now on: in the ‰'s population.
                changes["stay"] = stay_moved(b, row, old, new, event_day(event))

    @on(Reoffended)
    def reoffended(
        self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]
    ) -> None:
        # Re-offending is counted per person (the seed's 98 people), on the day of their
        # earliest offence in any of their cases (as the domain keeps it for one case),
        # whatever order they were recorded in.
        day = event_day(event, "on")
        person = row["person"] or f"case:{row['case_id']}"
        counted = b.row("reoffenders", "person", person)
        earliest = first_reoffence(
            date.fromisoformat(counted["reoffended_on"]) if counted else None,
            date.fromisoformat(day),
        ).isoformat()
        if counted is None:
            b.insert(
                "reoffenders",
                "person",
                {
                    "person": person,
                    "reoffended_on": earliest,
                    "unit": row["unit"],
                    "case_id": row["case_id"],
                },
            )
        elif earliest != counted["reoffended_on"]:
            b.count("counts", b.place(counted["unit"]), counted["reoffended_on"], "reoffended", -1)
            b.update(
                "reoffenders",
                person,
                reoffended_on=earliest,
                unit=row["unit"],
                case_id=row["case_id"],
            )
        else:
            return
        b.count("counts", b.place(row["unit"]), earliest, "reoffended")

    @staticmethod
    def missed_report_ins(
        cur: Any, t: Tables, places: list[Place], start: str, end: str, today: str
    ) -> int:
        """Subjects received in [start, end] in the subtrees whose report-in window closed
        before today without a report-in (and who were not ended within it)."""
        total = 0
        for place in places:
            low, high = subtree_range(place.path)
            value = cur.execute(
                f"SELECT COUNT(*) AS n FROM {t['subjects']} WHERE received_on >= ? "
                "AND received_on <= ? AND received_path >= ? AND received_path < ? "
                "AND reported = 0 AND report_moot = 0 AND window_due < ?",
                (start, end, low, high, today),
            ).scalar()
            total += int(value or 0)
        return total


def correction_indicators(
    counts: dict[str, int],
    received_to_end: int,
    now: dict[str, int],
    people: Population,
    missed_report_ins: int = 0,
) -> dict[str, Any]:
    """`received_to_end`: the people received up to the period's end; `people`: those under
    correction at its start, received in it and moved in, and the union of the three (the
    ‰'s denominator), each once across their cases, beside `receptions` (cases);
    `missed_report_ins`: of those received in the period, the windows that closed without a
    report-in."""
    receptions = counts.get("received", 0)
    reoffended = counts.get("reoffended", 0)
    on_time = counts.get("received_reported_on_time", 0)
    # The windows whose outcome is known: reported in (on time or late) or closed unreported.
    report_ins_due = on_time + counts.get("received_reported_late", 0) + missed_report_ins
    return {
        "received": people.received,
        "receptions": receptions,
        "cumulative_received": received_to_end,
        "under_correction_at_start": people.at_start,
        "moved_in": people.moved_in,
        "current": now.get("current", 0),
        "completed_on_schedule": counts.get("completed", 0),
        "committed": counts.get("committed", 0),
        "died": counts.get("died", 0),
        "reoffended": reoffended,
        "reoffending_per_mille": per_mille(reoffended, people.total),
        "on_time_report_in_rate": rate(on_time, report_ins_due),
        "reported_in": counts.get("reported_in", 0),
        "missed_report_in_now": now.get("missed_report_in", 0),
        "absconded_now": now.get("absconded", 0),
        "terms_ending_within_30_days": now.get("terms_ending", 0),
        "sanctions": {rung: counts.get(f"sanction:{rung}", 0) for rung in rules.SANCTION_RUNGS},
        "electronic_monitoring_now": now.get("monitoring", 0),
    }
