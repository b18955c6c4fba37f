"""Resettlement indicators (DOMAIN.md §2) and transitional placement bases with occupancy.

Rates are over the cohort received in the period: a person counts as placed (or assisted)
on the day and at the unit of their reception, whenever the placement (or the category and
first activity) happens. Each case's stays (projections.population: received, delegated,
ended) give the people under assistance on any day: the re-offending rate for a period is the
people who re-offended in it while under assistance (once a calendar year each) ÷ the people
under assistance at its start, received during it or delegated into the subtree during it
(each once). A person is one person across their cases (the keyed hash of their ID number,
`Privacy.person_key`): a year's re-offences count once, on the earliest of them, whichever
case recorded it.
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from domain import rules
from domain.case import CaseEvent
from domain.resettlement import (
    AssistanceActivityRecorded,
    AssistanceCategorised,
    AssistanceDelegated,
    AssistanceEnded,
    ContactLost,
    ContactRestored,
    PersonPlaced,
    PersonReceived,
    PersonReleased,
    PlacementEnded,
    ReleaseNotified,
    Reoffended,
    TransferAccepted,
    handover_due,
    notice_is_late,
    reoffended_under_assistance,
)
from projections.figures import rate
from projections.population import (
    Population,
    received_statements,
    stay_begun,
    stay_ended,
    stay_moved,
    stays_statements,
)
from projections.readmodel import Batch, Place, Projection, Tables, counter_table, event_day, on

FLAGS = (
    "received",
    "categorised",
    "activity",
    "placed",
    "placed_counted",
    "assisted_counted",
    "active",
    "contact_lost",
)


class ResettlementIndicators(Projection):
    name: ClassVar[str] = "resettlement"
    search_keyed: ClassVar[bool] = True
    tables: ClassVar[tuple[str, ...]] = ("people", "bases", "reoffences", "stays", "counts")
    weight: ClassVar[float] = 0.1
    # 2: re-offences count only once the person was received (`unreceived_reoffences`);
    # a late notice is judged by the day it was recorded.
    # 3: a person re-offends once a year across their cases (`person`, `reoffences`).
    # 4: `received_path`, so that a period's receptions count people, not cases.
    # 5: the rate's population counts people: `stays` instead of `active_delta`/`moved_in`.
    version: ClassVar[int] = 5

    def create_statements(self, t: Tables) -> list[str]:
        people, bases, reoffences = t["people"], t["bases"], t["reoffences"]
        flags = ", ".join(f"{flag} INTEGER NOT NULL DEFAULT 0" for flag in FLAGS)
        return [
            f"CREATE TABLE IF NOT EXISTS {people} (case_id TEXT PRIMARY KEY, unit TEXT NOT NULL, "
            f"path TEXT NOT NULL, {flags}, released_on TEXT, handover_due TEXT, received_on TEXT, "
            "received_unit TEXT, received_path TEXT, base_id TEXT, person TEXT, "
            "unreceived_reoffences TEXT NOT NULL DEFAULT '', ended INTEGER NOT NULL DEFAULT 0, "
            "stay INTEGER NOT NULL DEFAULT 0)",
            # A person's re-offence of a year (`person|year`): the earliest day, where counted.
            f"CREATE TABLE IF NOT EXISTS {reoffences} (person_year TEXT PRIMARY KEY, "
            "day TEXT NOT NULL, unit TEXT NOT NULL, case_id TEXT NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {people}_handover ON {people} (handover_due, path)",
            f"CREATE INDEX IF NOT EXISTS {people}_lost ON {people} (contact_lost, path)",
            f"CREATE INDEX IF NOT EXISTS {people}_active ON {people} (active, path)",
            f"CREATE TABLE IF NOT EXISTS {bases} (base_id TEXT PRIMARY KEY, unit TEXT NOT NULL, "
            "path TEXT NOT NULL, occupancy BIGINT NOT NULL, placed_total BIGINT NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS {bases}_path ON {bases} (path)",
            *received_statements(people),
            *stays_statements(t),
            *counter_table(t),
        ]

    @on(ReleaseNotified)
    def notified(self, b: Batch, event: ReleaseNotified) -> None:
        data = event.data
        place = b.place(str(getattr(event, "unit", "")))
        b.insert(
            "people",
            "case_id",
            {
                "case_id": str(event.originator_id),
                "unit": place.unit,
                "path": place.path,
                **dict.fromkeys(FLAGS, 0),
                "released_on": None,
                "handover_due": None,
                "received_on": None,
                "received_unit": None,
                "received_path": None,
                "base_id": None,
                "person": b.privacy.person_key((data.get("person") or {}).get("id_number")),
                "unreceived_reoffences": "",
                "ended": 0,
                "stay": 0,
            },
        )
        notified_on = event_day(event, "notified_on")
        b.count("counts", place, notified_on, "notified")
        expected = data.get("expected_release_date")
        # Counted with the notice (by `notified_on`), judged late by the day it was recorded.
        recorded_on = date.fromisoformat(event_day(event))
        if expected and notice_is_late(date.fromisoformat(expected), recorded_on):
            b.count("counts", place, notified_on, "late_notice")

    def apply(self, b: Batch, event: CaseEvent, kind: str, position: int) -> None:
        """A person's row is read once for every later event it has a handler for; then
        the cohort they were received in counts their placement and assistance."""
        handler = self.handlers.get(type(event))
        if handler is None:
            return
        if isinstance(event, ReleaseNotified):
            handler(self, b, event)
            return
        case_id = str(event.originator_id)
        row = b.row("people", "case_id", case_id)
        if row is None:
            return
        changes: dict[str, Any] = {}
        handler(self, b, event, row, changes)
        merged = {**row, **changes}
        if merged["received"] and merged["received_unit"]:
            cohort = b.place(merged["received_unit"])
            if merged["placed"] and not merged["placed_counted"]:
                changes["placed_counted"] = 1
                b.count("counts", cohort, merged["received_on"], "received_placed")
            if merged["categorised"] and merged["activity"] and not merged["assisted_counted"]:
                changes["assisted_counted"] = 1
                b.count("counts", cohort, merged["received_on"], "received_assisted")
        b.update("people", case_id, **changes)

    @on(PersonReleased)
    def released(self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]) -> None:
        released = str(event.data["released_on"])[:10]
        changes["released_on"] = released
        if not row["received"]:
            changes["handover_due"] = handover_due(date.fromisoformat(released)).isoformat()

    @on(PersonReceived)
    def received(self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]) -> None:
        place = b.place(row["unit"])
        received_on = event_day(event, "received_on")
        changes.update(
            received=1,
            active=1,
            received_on=received_on,
            received_unit=place.unit,
            received_path=place.path,
            handover_due=None,
            stay=stay_begun(b, row, place, received_on, None),
        )
        b.count("counts", place, received_on, "received")
        due = row["handover_due"]
        if due and received_on > due:
            b.count("counts", place, received_on, "late_handover")
        # Re-offences recorded before the reception count if they came after it.
        changes["unreceived_reoffences"] = ""
        for day in filter(None, str(row["unreceived_reoffences"]).split(",")):
            self._count_reoffence(b, {**row, **changes}, day)

    @on(AssistanceCategorised)
    def categorised(
        self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]
    ) -> None:
        changes["categorised"] = 1

    @on(AssistanceActivityRecorded)
    def activity(self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]) -> None:
        changes["activity"] = 1

    @on(AssistanceDelegated, TransferAccepted)
    def delegated(self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]) -> None:
        if not event.data.get("to_unit"):
            return
        place = b.place(row["unit"])
        new = b.place(event.data["to_unit"])
        changes.update(unit=new.unit, path=new.path)
        if row["active"]:
            # Under assistance in the new subtree from now on: in the yearly rate's
            # denominator there, beside those received there.
            changes["stay"] = stay_moved(b, row, place, new, event_day(event))

    @on(PersonPlaced)
    def placed(self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]) -> None:
        changes["placed"] = 1
        self._leave_base(b, row)
        base_id = event.data.get("base_id")
        if base_id and event.data.get("placement") in rules.PLACEMENTS_WITH_BASE:
            self._enter_base(b, str(base_id), b.place(row["unit"]))
            changes["base_id"] = str(base_id)
        else:
            changes["base_id"] = None

    @on(PlacementEnded)
    def placement_ended(
        self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]
    ) -> None:
        self._leave_base(b, row)
        changes["base_id"] = None

    @on(ContactLost)
    def contact_lost(
        self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]
    ) -> None:
        changes["contact_lost"] = 1

    @on(ContactRestored)
    def contact_restored(
        self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]
    ) -> None:
        changes["contact_lost"] = 0

    @on(Reoffended)
    def reoffended(
        self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]
    ) -> None:
        day = event_day(event, "on")
        if not row["received"]:
            # Not (yet) in the rate's population: kept until the reception says whether the
            # offence came after it.
            pending = [d for d in str(row["unreceived_reoffences"]).split(",") if d]
            changes["unreceived_reoffences"] = ",".join([*pending, day])
            return
        self._count_reoffence(b, row, day)

    def _count_reoffence(self, b: Batch, row: dict[str, Any], day: str) -> None:
        """The people re-offending while under assistance, once a calendar year each (in
        any of their cases), on the earliest day of that year."""
        received_on = row["received_on"]
        if not reoffended_under_assistance(
            date.fromisoformat(received_on) if received_on else None, date.fromisoformat(day)
        ):
            return
        key = f"{row['person'] or 'case:' + row['case_id']}|{day[:4]}"
        counted = b.row("reoffences", "person_year", key)
        if counted is None:
            b.insert(
                "reoffences",
                "person_year",
                {"person_year": key, "day": day, "unit": row["unit"], "case_id": row["case_id"]},
            )
        elif day < counted["day"]:
            b.count("counts", b.place(counted["unit"]), counted["day"], "reoffended", -1)
            b.update("reoffences", key, day=day, unit=row["unit"], case_id=row["case_id"])
        else:
            return
        b.count("counts", b.place(row["unit"]), day, "reoffended")

    @on(AssistanceEnded)
    def ended(self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]) -> None:
        self._leave_base(b, row)
        changes.update(base_id=None, ended=1, active=0, handover_due=None, contact_lost=0)
        if row["active"]:
            stay_ended(b, row, event_day(event, "ended_on"))

    def _enter_base(self, b: Batch, base_id: str, place: Place) -> None:
        bases = b.t["bases"]
        # A base belongs to the unit of the first person placed there.
        b.later(
            f"INSERT INTO {bases} (base_id, unit, path, occupancy, placed_total) "
            "VALUES (?, ?, ?, 1, 1) ON CONFLICT (base_id) DO UPDATE SET "
            f"occupancy = {bases}.occupancy + 1, placed_total = {bases}.placed_total + 1",
            (base_id, place.unit, place.path),
        )

    def _leave_base(self, b: Batch, row: dict[str, Any]) -> None:
        if row.get("base_id"):
            bases = b.t["bases"]
            b.later(
                f"UPDATE {bases} SET occupancy = occupancy - 1 WHERE base_id = ?", (row["base_id"],)
            )


def resettlement_indicators(
    counts: dict[str, int],
    people: Population,
    now: dict[str, int],
    bases: dict[str, int],
) -> dict[str, Any]:
    """`received`, `under_assistance_at_start` and `moved_in` count people (a person received
    twice in the period once, as in the re-offending numerator), and the rate's denominator
    the people of the three, each once; the placement and assistance rates are over
    `receptions` (cases), as their numerators count cases."""
    receptions = counts.get("received", 0)
    return {
        "notified": counts.get("notified", 0),
        "received": people.received,
        "receptions": receptions,
        "placement_rate": rate(counts.get("received_placed", 0), receptions),
        "assistance_rate": rate(counts.get("received_assisted", 0), receptions),
        "reoffending_rate": rate(counts.get("reoffended", 0), people.total),
        "reoffended": counts.get("reoffended", 0),
        "under_assistance_at_start": people.at_start,
        "moved_in": people.moved_in,
        "late_notices": counts.get("late_notice", 0),
        "late_handovers": counts.get("late_handover", 0),
        "missed_handover_now": now.get("missed_handover", 0),
        "lost_contact_now": now.get("lost_contact", 0),
        "under_assistance_now": now.get("under_assistance", 0),
        "transitional_bases": bases.get("bases", 0),
        "transitional_base_occupancy": bases.get("occupancy", 0),
        "transitional_base_capacity": bases.get("capacity", 0),
    }
