"""The case list: one row per case of every kind, for `GET /cases` and its filters.

`deadline` is the date that makes a case overdue once it has passed (a dispute's time
limit while not closed, a released person's handover window until received, a correction
subject's report-in window until reported in); it is NULL when nothing is due, and
`overdue` is decided at query time against the clock.
"""

from __future__ import annotations

import json
from datetime import date
from operator import itemgetter
from typing import Any, ClassVar

from domain import correction, dispute, resettlement, rules
from domain.case import CaseEvent, CaseOpened
from domain.clock import cst_date
from domain.correction import (
    CorrectionCompleted,
    ResidenceChanged,
    SubjectCommitted,
    SubjectDied,
    SubjectReportedIn,
)
from domain.dispute import (
    DeadlineExtended,
    DisputeAssigned,
    DisputeClosed,
    DisputeTriaged,
    deadline_after_triage,
    time_limit,
)
from domain.resettlement import (
    AssistanceCategorised,
    AssistanceDelegated,
    AssistanceEnded,
    PersonReceived,
    PersonReleased,
    handover_due,
)
from domain.sealing import RecordSealed
from projections.correction import minor_at_offence, report_due
from projections.readmodel import UNIT_DEPTH, Batch, Projection, Tables, on

UNIT_COLUMNS = [f"u{d}" for d in range(UNIT_DEPTH)]
# The list order (newest first, ties by id), then every column a list filter reads.
FILTERED = "opened_at, case_id, kind, status, category, deadline"
# Unit columns with an index of their own (province, city, county, township).
INDEXED_DEPTH = 4

COLUMNS = [
    "case_id",
    "kind",
    "status",
    "unit",
    *UNIT_COLUMNS,
    "category",
    "opened_at",
    "last_event_at",
    "deadline",
    "minor",
    "version",
    "position",
    "state",
    "display",
    "transfer_to",
]
TRANSFERS_PROPOSED = (
    correction.TransferProposed,
    resettlement.TransferProposed,
    dispute.TransferProposed,
)
TRANSFERS_ACCEPTED = (
    correction.TransferAccepted,
    resettlement.TransferAccepted,
    dispute.TransferAccepted,
)
TRANSFERS_DECLINED = (
    correction.TransferDeclined,
    resettlement.TransferDeclined,
    dispute.TransferDeclined,
)


class CaseList(Projection):
    name: ClassVar[str] = "cases"
    search_keyed: ClassVar[bool] = True
    tables: ClassVar[tuple[str, ...]] = ("list", "terms", "tally", "reach")
    # Weights (relative, all read models): in proportion to the seconds each took to
    # apply a rebuild's events of a dispute-heavy log (docs/profiling.md, session 5);
    # the case list is split into shares of cases to level the processes.
    weight: ClassVar[float] = 3.0
    partitionable: ClassVar[bool] = True
    # Every case event changes the row (status, time, version), not only those handled.
    kinds: ClassVar[frozenset[str] | None] = None
    # 2: search terms carry opened_at and the unit path; 3: and a minor's confidentiality;
    # 4: a dispute's deadline extension survives triage (the state says `extended`);
    # 5: search terms of names and summaries in simplified characters (歐陽 finds 欧阳);
    # 6: a case is listed in the subtrees of the units it is handed down or transferred to
    # (`reach`), and a transfer awaiting its answer shows (`transfer_to`);
    # 7: a sealed record (domain.sealing) leaves the list, its search terms and the tally;
    # 8: at most MAX_CASE_TERMS search terms a case (issue 14).
    version: ClassVar[int] = 8

    def create_statements(self, t: Tables) -> list[str]:
        cases, terms = t["list"], t["terms"]
        units = ", ".join(f"{c} TEXT" for c in UNIT_COLUMNS)
        statements = [
            f"CREATE TABLE IF NOT EXISTS {cases} (case_id TEXT PRIMARY KEY, kind TEXT NOT NULL, "
            f"status TEXT NOT NULL, unit TEXT NOT NULL, {units}, category TEXT, "
            "opened_at TEXT NOT NULL, last_event_at TEXT NOT NULL, deadline TEXT, "
            "minor INTEGER NOT NULL DEFAULT 0, version BIGINT NOT NULL, position BIGINT NOT NULL, "
            "state TEXT NOT NULL, display TEXT NOT NULL, transfer_to TEXT)",
            f"CREATE INDEX IF NOT EXISTS {cases}_opened ON {cases} ({FILTERED})",
            # Search terms (keyed hashes of names' characters and pairs, ID numbers, the
            # summary's pairs): a term's cases come newest first from the index, and its
            # matches in a unit subtree are counted from the index alone.
            # `confidential`: for a minor's case, the one unit whose staff may see who it is
            # (auditors may too); a search by anyone else does not find it at all.
            f"CREATE TABLE IF NOT EXISTS {terms} (term BIGINT NOT NULL, opened_at TEXT NOT NULL, "
            "case_id TEXT NOT NULL, path TEXT NOT NULL, confidential TEXT)",
            f"CREATE UNIQUE INDEX IF NOT EXISTS {terms}_key ON {terms} "
            "(term, opened_at, case_id, path, confidential)",
            # Cases now per unit (and every unit above), kind and status: the list's total
            # when it filters on nothing else, without counting rows.
            f"CREATE TABLE IF NOT EXISTS {t['tally']} (unit TEXT NOT NULL, kind TEXT NOT NULL, "
            f"status TEXT NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (unit, kind, status)){t.clustered}",
            # The units besides the handling unit's chain whose lists show the case: the
            # chain of a dispute's assigned unit (分流指派) and of a transfer's receiving unit.
            f"CREATE TABLE IF NOT EXISTS {t['reach']} (unit TEXT NOT NULL, case_id TEXT NOT NULL, "
            f"PRIMARY KEY (unit, case_id)){t.clustered}",
        ]
        # A subtree down to township level is one column's value: its rows come in list
        # order, and the filters and the count are answered from the index alone. Below
        # that, the township's index narrows a village's few rows.
        for column in UNIT_COLUMNS[:INDEXED_DEPTH]:
            statements.append(
                f"CREATE INDEX IF NOT EXISTS {cases}_{column} ON {cases} ({column}, {FILTERED})"
            )
        return statements

    def apply(self, b: Batch, event: CaseEvent, kind: str, position: int) -> None:
        rows: dict[str, dict[str, Any]] = b.scratch.setdefault(self.name, {})
        case_id = str(event.originator_id)
        if isinstance(event, CaseOpened):
            rows[case_id] = self._open(b, event, kind, position)
            return
        row = rows.get(case_id)
        if row is None:
            found = b.one(f"SELECT * FROM {b.t['list']} WHERE case_id = ?", (case_id,))
            if found is None:
                return  # its opening event was not a case this build knows
            row = {**found, "_new": False, "_changed": set()}
            row["_was"] = _tally_key(row)
            rows[case_id] = row
        changes: dict[str, Any] = {
            "last_event_at": event.timestamp.isoformat(),
            "version": event.originator_version,
            "position": position,
        }
        if event.leads_to is not None:
            changes["status"] = event.leads_to
        handler = self.handlers.get(type(event))
        if handler is not None:
            handler(self, b, event, row, changes)
        for column, value in changes.items():
            if row[column] != value:
                row[column] = value
                row["_changed"].add(column)

    # --- what events change beyond status, time and version -----------------------------

    @on(DisputeTriaged)
    def triaged(self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]) -> None:
        state = _state(row)
        state["complexity"] = event.data.get("complexity")
        limit = _limit(state)
        deadline = date.fromisoformat(row["deadline"]) if row["deadline"] else limit
        changes["deadline"] = deadline_after_triage(
            limit, deadline, bool(state.get("extended"))
        ).isoformat()

    @on(DeadlineExtended)
    def extended(self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]) -> None:
        _state(row)["extended"] = True
        changes["deadline"] = str(event.data["new_deadline"])[:10]

    @on(PersonReleased)
    def released(self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]) -> None:
        released_on = date.fromisoformat(event.data["released_on"])
        changes["deadline"] = handover_due(released_on).isoformat()

    # Nothing is due any more: the dispute is closed, the person received or the case
    # ended, the subject reported in or the correction ended.
    @on(
        DisputeClosed,
        PersonReceived,
        AssistanceEnded,
        SubjectReportedIn,
        CorrectionCompleted,
        SubjectCommitted,
        SubjectDied,
    )
    def nothing_due(
        self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]
    ) -> None:
        changes["deadline"] = None

    @on(AssistanceCategorised)
    def categorised(
        self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]
    ) -> None:
        changes["category"] = event.data.get("category", row["category"])

    @on(DisputeAssigned)
    def assigned(self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]) -> None:
        """A dispute handed down is listed in the handling unit's subtree too."""
        _set_reach(b, row, "assigned", event.data.get("assigned_unit"))

    @on(*TRANSFERS_PROPOSED)
    def transfer_proposed(
        self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]
    ) -> None:
        """Until it is answered, the receiving unit lists the case too, marked."""
        changes["transfer_to"] = event.data["to_unit"]
        _set_reach(b, row, "transfer", event.data["to_unit"])

    @on(*TRANSFERS_DECLINED)
    def transfer_declined(
        self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]
    ) -> None:
        changes["transfer_to"] = None
        _set_reach(b, row, "transfer", None)

    @on(*TRANSFERS_ACCEPTED)
    def transfer_accepted(
        self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]
    ) -> None:
        changes["transfer_to"] = None
        _set_reach(b, row, "transfer", None)
        self.moved(b, event, row, changes)
        if row["kind"] == "dispute":
            # A dispute's terms are not kept in its row: they follow it by its id (rare).
            place = b.place(event.data["to_unit"])
            b.cur.execute(
                f"UPDATE {b.t['terms']} SET path = ? WHERE case_id = ?",
                (place.path, str(event.originator_id)),
            )

    @on(RecordSealed)
    def sealed(self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]) -> None:
        """犯罪記錄封存: the record leaves the list, the search and the lookup by person
        (its row, its keyed hashes and its reach go); the indicators still count it."""
        row["_sealed"] = True

    @on(AssistanceDelegated, ResidenceChanged)
    def moved(self, b: Batch, event: Any, row: dict[str, Any], changes: dict[str, Any]) -> None:
        """The case moves to another handling unit, and its search terms with it."""
        if not event.data.get("to_unit"):
            return
        place = b.place(event.data["to_unit"])
        changes["unit"] = place.unit
        changes.update(zip(UNIT_COLUMNS, place.columns(), strict=True))
        confidential = place.unit if row["minor"] else None
        moves: list[tuple[Any, ...]] = b.scratch.setdefault("cases.moves", [])
        moves.extend(
            (place.path, confidential, term, row["opened_at"], str(event.originator_id))
            for term in _state(row).get("terms", [])
        )

    def finish(self, b: Batch) -> None:
        """Writes the rows this batch touched: each new case once, each changed one once."""
        rows: dict[str, dict[str, Any]] = b.scratch.pop(self.name, {})
        cases = b.t["list"]
        # What reads the parsed state, before it is written back: where the tally counts
        # each case now, and the units that list a case whose reach changed.
        tallied = {case_id: _tally_key(row) for case_id, row in rows.items()}
        reached = {
            case_id: _reach_units(row)
            for case_id, row in rows.items()
            if row.pop("_reach_changed", False) and not row.get("_sealed")
        }
        for row in rows.values():
            if "_state" in row:
                # The state is kept parsed for the batch and written once.
                state = _dumps(row.pop("_state"))
                if state != row["state"]:
                    row["state"] = state
                    row["_changed"].add("state")
        # In term order: neighbouring index entries, fewer pages touched.
        terms = sorted(b.scratch.pop("cases.terms", []), key=itemgetter(0))
        if terms:
            b.cur.insert_many(
                b.t["terms"],
                ("term", "opened_at", "case_id", "path", "confidential"),
                terms,
                on_conflict="ON CONFLICT DO NOTHING",
            )
        moves = b.scratch.pop("cases.moves", [])
        if moves:
            b.cur.executemany(
                f"UPDATE {b.t['terms']} SET path = ?, confidential = ? "
                "WHERE term = ? AND opened_at = ? AND case_id = ?",
                moves,
            )
        reach = b.t["reach"]
        sealed = {case_id: row for case_id, row in rows.items() if row.get("_sealed")}
        for case_id, row in sealed.items():
            # By the terms the row keeps (a sealed kind's cases keep them), down the index.
            terms = [(term, row["opened_at"], case_id) for term in _state(row).get("terms", [])]
            if terms:
                b.cur.executemany(
                    f"DELETE FROM {b.t['terms']} WHERE term = ? AND opened_at = ? AND case_id = ?",
                    terms,
                )
            for table in ("reach", "list"):
                b.cur.execute(f"DELETE FROM {b.t[table]} WHERE case_id = ?", (case_id,))
        # The reach of each case whose reach changed, written anew (a statement for all).
        b.cur.delete_many(reach, "case_id", list(reached))
        b.cur.insert_many(
            reach,
            ("unit", "case_id"),
            [(unit, case_id) for case_id, units in reached.items() for unit in units],
            on_conflict="ON CONFLICT DO NOTHING",
        )
        new = [
            [row[c] for c in COLUMNS]
            for row in rows.values()
            if row["_new"] and not row.get("_sealed")
        ]
        if new:
            b.cur.insert_many(cases, COLUMNS, new, on_conflict="ON CONFLICT (case_id) DO NOTHING")
        self._tally(b, rows.values(), tallied)
        updates: dict[tuple[str, ...], list[list[Any]]] = {}
        for case_id, row in rows.items():
            if not row["_new"] and row["_changed"] and not row.get("_sealed"):
                columns = tuple(sorted(row["_changed"]))
                updates.setdefault(columns, []).append([*(row[c] for c in columns), case_id])
        for columns, params in updates.items():
            b.cur.update_many(cases, columns, "case_id", params)

    def _tally(self, b: Batch, rows: Any, now: dict[str, Any]) -> None:
        """Moves each touched case from its tally key before the batch to its key `now`."""
        deltas: dict[tuple[str, str, str], int] = {}
        for row in rows:
            before, after = row["_was"], now[row["case_id"]]
            if before == after:
                continue
            moves = [*([(*before, -1)] if before else []), *([(*after, 1)] if after else [])]
            for chain, kind, status, n in moves:
                for unit in chain:
                    deltas[(unit, kind, status)] = deltas.get((unit, kind, status), 0) + n
        if not deltas:
            return
        tally = b.t["tally"]
        keys = sorted(deltas)
        b.cur.insert_many(
            tally,
            ("unit", "kind", "status", "n"),
            [(*key, deltas[key]) for key in keys],
            on_conflict=f"ON CONFLICT (unit, kind, status) DO UPDATE SET n = {tally}.n + excluded.n",
        )
        # No rows at zero: the table is then the same whatever the batch boundaries were.
        b.cur.executemany(
            f"DELETE FROM {tally} WHERE unit = ? AND kind = ? AND status = ? AND n = 0", keys
        )

    def _open(self, b: Batch, event: CaseEvent, kind: str, position: int) -> dict[str, Any]:
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
            deadline = _limit(state).isoformat()
            display = {"names": names, "summary": summary}
        else:
            person = data.get("person") or {}
            names = [str(person.get("name", ""))] if person.get("name") else []
            identifiers = [str(person["id_number"])] if person.get("id_number") else []
            if kind == "correction":
                category = data.get("correction_type")
                deadline = report_due(data)
                minor = int(minor_at_offence(data))
            display = {"names": names}
        timestamp = event.timestamp.isoformat()
        found = sorted(b.privacy.index_terms(names, identifiers, summary))
        confidential = place.unit if minor else None
        found_by: list[tuple[Any, ...]] = b.scratch.setdefault("cases.terms", [])
        found_by.extend((term, timestamp, case_id, place.path, confidential) for term in found)
        if kind != "dispute":
            # Cases that may move keep their terms, to move them along (disputes do not).
            state["terms"] = found
        return {
            "case_id": case_id,
            "kind": kind,
            "status": event.leads_to or "open",
            "unit": place.unit,
            **dict(zip(UNIT_COLUMNS, place.columns(), strict=True)),
            "category": category,
            "opened_at": timestamp,
            "last_event_at": timestamp,
            "deadline": deadline,
            "minor": minor,
            "version": event.originator_version,
            "position": position,
            # Kept parsed for the batch: finish() writes it.
            "state": None,
            "_state": state,
            "display": b.privacy.seal(display),
            "transfer_to": None,
            "_new": True,
            "_changed": set(),
            "_was": None,
        }


def _tally_key(row: dict[str, Any]) -> tuple[tuple[str, ...], str, str] | None:
    """Every unit whose list counts the case: the handling unit's chain and the units
    that reach it besides (each once); None for a sealed record (no list counts it)."""
    if row.get("_sealed"):
        return None
    chain = tuple(row[c] for c in UNIT_COLUMNS if row[c] is not None)
    return (*chain, *_reach_units(row)), row["kind"], row["status"]


def _reach_units(row: dict[str, Any]) -> list[str]:
    """The units outside the handling unit's chain that list the case (`reach`)."""
    chain = {row[c] for c in UNIT_COLUMNS if row[c] is not None}
    units: dict[str, None] = {}
    for extra in _state(row).get("reach", {}).values():
        units.update((unit, None) for unit in extra if unit not in chain)
    return list(units)


def _set_reach(b: Batch, row: dict[str, Any], why: str, unit: str | None) -> None:
    """The chain of `unit` lists the case, for `why` (None: no longer)."""
    reach: dict[str, list[str]] = _state(row).setdefault("reach", {})
    if unit is None:
        reach.pop(why, None)
    else:
        reach[why] = list(b.place(unit).chain)
    row["_reach_changed"] = True


def _limit(state: dict[str, Any]) -> date:
    """The dispute's time limit, by the domain's own rule."""
    return time_limit(
        date.fromisoformat(state["registered_on"]),
        state["time_limit_class"],
        state.get("complexity"),
        state.get("scope"),
    )


def _state(row: dict[str, Any]) -> dict[str, Any]:
    """The row's state, parsed once a batch (finish() writes it back)."""
    state = row.get("_state")
    if state is None:
        state = row["_state"] = _loads(row["state"])
    return state


def _dumps(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _loads(text: str | None) -> dict[str, Any]:
    return dict(json.loads(text)) if text else {}
