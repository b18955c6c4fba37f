"""The queries the web layer answers from read models (never from event streams).

"Now" is always `ct.clock`; dates are calendar days in China Standard Time. The methods
that take an actor apply the reading policy: the reader's jurisdiction, minors'
confidentiality, and the read-access log of the names a page shows.
"""

from __future__ import annotations

import copy
import time
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from casetrail.audit.access import Search
from casetrail.privacy import redact_minor
from domain.case import Actor
from domain.clock import cst_date
from domain.errors import NotPermitted
from domain.roles import AUDITOR
from projections import engine_for
from projections.bases_totals import subtree_bases, totals
from projections.case_list import LIST_COLUMNS, unit_page
from projections.correction import CorrectionIndicators, correction_indicators
from projections.disputes import dispute_indicators
from projections.kept import kept_for, stamp
from projections.population import population, received_up_to
from projections.privacy import normalise
from projections.readmodel import Place, Tables, subtree_range
from projections.resettlement import resettlement_indicators

if TYPE_CHECKING:
    from casetrail.bootstrap import Casetrail
    from store.db import Cursor

EARLIEST = "0001-01-01"
LATEST = "9999-12-31"
UPCOMING_LIMIT = 500
# A text search checks at most this many of its character pairs (the rarest).
MAX_QUERY_GRAMS = 12
INDICATOR_PROJECTION = {
    "dispute": "disputes",
    "resettlement": "resettlement",
    "correction": "correction",
}


def _day(value: date | str | None, default: str) -> str:
    if value is None:
        return default
    return value.isoformat() if isinstance(value, date) else str(value)[:10]


class ReadModels:
    def __init__(self, ct: Casetrail) -> None:
        self.ct = ct
        self.engine = engine_for(ct)
        self.engine.setup()

    def today(self) -> date:
        return cst_date(self.ct.clock.now())

    def _places(self, unit: str | None) -> list[Place]:
        """The unit asked for, or every root of the unit tree."""
        if unit is not None:
            return [self.engine.place(unit)]
        rows = self.ct.db.query("SELECT code FROM units WHERE parent IS NULL ORDER BY code")
        return [self.engine.place(row["code"]) for row in rows]

    def _stamp_of(self, cur: Cursor, name: str) -> tuple[Any, ...]:
        generation = self.engine.active_generation(name)
        assert generation is not None
        return stamp(cur, self.engine.tracking_table, name, generation)

    def _tables(self, name: str) -> Tables:
        generation = self.engine.active_generation(name)
        assert generation is not None
        return self.engine.tables(name, generation)

    # --- what a reader may see ------------------------------------------------------------

    def jurisdiction_unit(self, actor: Actor, unit: str | None) -> str | None:
        """The unit subtree a query covers: the reader's own by default, never outside it
        (auditors too: an auditor reaches their unit's subtree, casetrail.directory)."""
        if unit is not None:
            self.ct.directory.require_unit(unit)
        if unit is None:
            return actor.unit
        if not self.ct.directory.may_act(actor.unit, unit):
            raise NotPermitted(
                "This unit is outside your unit's jurisdiction.", code="outside_jurisdiction"
            )
        return unit

    def cases_for(self, actor: Actor, **filters: Any) -> dict[str, Any]:
        """A page of the case list within the reader's jurisdiction (see `list_cases`),
        with minors' identities hidden from those not entitled, and its names recorded
        in the read-access log (casetrail.audit)."""
        filters["unit"] = self.jurisdiction_unit(actor, filters.get("unit"))
        # A minor's case is found by name only by those who may see who it is (the case's
        # own unit and auditors, as casetrail.service.sees_minor_identity).
        minors_of = None if actor.role == AUDITOR else actor.unit
        result = self.list_cases(**filters, minors_of=minors_of)
        total = int(result["total"])
        items = []
        for item in result["items"]:
            shown = redact_minor(actor, item)
            if shown is not item and filters.get("q") is not None:
                # A search must not tell whose case it is when the name is confidential.
                total -= 1
                continue
            items.append(shown)
        shown_names = [str(item["id"]) for item in items if item.get("names")]
        # A search can tell whether a person is a case (a total, even on an empty page):
        # recorded with its keyed hash, never its text.
        q = filters.get("q")
        search = None
        if q is not None and q.strip():
            privacy = self.engine.privacy_of(self._tables("cases"))
            search = Search(normalise(q), total, privacy.query_terms(q)[0])
        self.ct.reads.record_reads(actor, shown_names, "list", search=search)
        return {"items": items, "total": total, "page": int(result["page"])}

    def indicators_for(self, actor: Actor, *, kind: str, **period: Any) -> dict[str, Any]:
        """The indicators of a kind (see `indicators`) within the reader's jurisdiction."""
        unit = self.jurisdiction_unit(actor, period.pop("unit", None))
        return self.indicators(kind=kind, unit=unit, **period)

    # --- the case list ----------------------------------------------------------------

    def list_cases(
        self,
        *,
        kind: str | None = None,
        unit: str | None = None,
        status: str | None = None,
        overdue: bool | None = None,
        category: str | None = None,
        q: str | None = None,
        page: int = 1,
        per_page: int = 20,
        minors_of: str | None = None,
    ) -> dict[str, Any]:
        """A page of the case list. With `minors_of` (a unit), a search (`q`) finds a
        minor's case only if it is that unit's: whose case it is stays confidential."""
        page, per_page = max(int(page), 1), max(int(per_page), 1)
        t = self._tables("cases")
        cases = t["list"]
        # Filters on the case row, written for a table alias ({p} is "" or "l.").
        where: list[str] = []
        params: list[Any] = []
        searching = q is not None and bool(q.strip())
        for column, value in (("kind", kind), ("status", status), ("category", category)):
            if value is not None:
                where.append(f"{{p}}{column} = ?")
                params.append(value)
        today = self.today().isoformat()
        if overdue is True:
            where.append("{p}deadline < ?")
            params.append(today)
        elif overdue is False:
            where.append("({p}deadline IS NULL OR {p}deadline >= ?)")
            params.append(today)
        if q is not None and searching:
            place = self.engine.place(unit) if unit is not None else None
            with self.ct.db.transaction(commit=False) as cur:
                total, rows = self._search(
                    cur, t, q, place, where, params, page, per_page, minors_of
                )
            return {"items": [self._item(r, today) for r in rows], "total": total, "page": page}
        tallied = overdue is None and category is None
        if unit is not None:
            with self.ct.db.transaction(commit=False) as cur:
                count, page_rows = unit_page(
                    t, self.engine.place(unit), where, params, page, per_page
                )
                if tallied:
                    total = self._tally(cur, t["tally"], unit, kind, status)
                else:
                    total = int(cur.execute(*count).scalar())
                rows = cur.execute(*page_rows).fetchall()
            return {"items": [self._item(r, today) for r in rows], "total": total, "page": page}
        condition = ("WHERE " + " AND ".join(w.format(p="") for w in where)) if where else ""
        with self.ct.db.transaction(commit=False) as cur:
            if tallied:
                total = self._tally(cur, t["tally"], unit, kind, status)
            else:
                total = int(
                    cur.execute(f"SELECT COUNT(*) AS n FROM {cases} {condition}", params).scalar()
                )
            rows = cur.execute(
                f"SELECT {LIST_COLUMNS} FROM {cases} {condition} "
                "ORDER BY opened_at DESC, case_id DESC LIMIT ? OFFSET ?",
                [*params, per_page, (page - 1) * per_page],
            ).fetchall()
        return {"items": [self._item(row, today) for row in rows], "total": total, "page": page}

    def search_scope(
        self, cur: Cursor, t: Tables, place: Place | None, minors_of: str | None
    ) -> tuple[str, list[Any]]:
        """The condition on search terms (alias `tm`) a reader at `place` may find: cases
        handled in its subtree, or handed down or being transferred to a unit of it (the
        list's `reach`, so a search finds what the list shows); a minor's case only for its
        own unit's staff (`minors_of`, None for auditors)."""
        scope, params = "", []
        if place is not None:
            scope, params = " AND (tm.path >= ? AND tm.path < ?", list(subtree_range(place.path))
            reach = t["reach"]
            # Most units reach nothing beyond their subtree: their plan stays the plain one.
            if cur.execute(
                f"SELECT 1 AS n FROM {reach} WHERE unit = ? LIMIT 1", (place.unit,)
            ).fetchone():
                scope += f" OR tm.case_id IN (SELECT case_id FROM {reach} WHERE unit = ?)"
                params.append(place.unit)
            scope += ")"
        if minors_of is not None:
            scope += " AND (tm.confidential IS NULL OR tm.confidential = ?)"
            params.append(minors_of)
        return scope, params

    def _search(
        self,
        cur: Cursor,
        t: Tables,
        q: str,
        place: Place | None,
        where: list[str],
        params: list[Any],
        page: int,
        per_page: int,
        minors_of: str | None = None,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Cases found by `q`: its whole-word term, or every character pair of it.

        Each of the two is walked in list order from the terms index (newest first),
        within the unit's subtree by the path the index carries; the other filters join
        the case row. The page is the merge of the two walks' first rows; the total is
        the two counts less the cases both found.
        """
        terms, cases = t["terms"], t["list"]
        whole, grams = self.engine.privacy_of(t).query_terms(q)
        scope, scope_params = self.search_scope(cur, t, place, minors_of)
        join, filters = "", ""
        if where:
            # The terms walk leads; each candidate's row is then checked (CROSS JOIN keeps
            # SQLite from starting at the list's indexes).
            join = f" CROSS JOIN {cases} l"
            filters = " AND l.case_id = tm.case_id AND " + " AND ".join(
                w.format(p="l.") for w in where
            )

        def having(others: list[int]) -> tuple[str, list[Any]]:
            sql = "".join(
                f" AND EXISTS (SELECT 1 FROM {terms} g{i} WHERE g{i}.term = ? "
                f"AND g{i}.opened_at = tm.opened_at AND g{i}.case_id = tm.case_id)"
                for i in range(len(others))
            )
            return sql, list(others)

        walks: list[tuple[int, list[int]]] = [(whole, [])]
        if grams:
            if len(grams) > 1:
                # Walk the rarest pair; the others are looked up per candidate.
                counts = {
                    g: int(
                        cur.execute(
                            f"SELECT COUNT(*) AS n FROM {terms} WHERE term = ?", (g,)
                        ).scalar()
                    )
                    for g in grams
                }
                # The rarest few narrow enough; each further one costs a lookup per
                # candidate (and PostgreSQL's planner dwells on many EXISTS).
                grams = sorted(grams, key=lambda g: (counts[g], g))[:MAX_QUERY_GRAMS]
            walks.append((grams[0], grams[1:]))

        def walk_sql(term: int, others: list[int], select: str) -> tuple[str, list[Any]]:
            exists, exists_params = having(others)
            sql = f"SELECT {select} FROM {terms} tm{join} WHERE tm.term = ?{scope}{exists}{filters}"
            return sql, [term, *scope_params, *exists_params, *params]

        limit = page * per_page
        found: set[tuple[str, str]] = set()
        total = 0
        for term, others in walks:
            sql, args = walk_sql(term, others, "COUNT(*) AS n")
            total += int(cur.execute(sql, args).scalar())
            sql, args = walk_sql(term, others, "tm.opened_at, tm.case_id")
            rows = cur.execute(
                f"{sql} ORDER BY tm.opened_at DESC, tm.case_id DESC LIMIT ?", [*args, limit]
            ).fetchall()
            found.update((r["opened_at"], r["case_id"]) for r in rows)
        if grams:
            # Cases found by both the whole word and every pair were counted twice.
            sql, args = walk_sql(whole, grams, "COUNT(*) AS n")
            total -= int(cur.execute(sql, args).scalar())
        chosen = sorted(found, reverse=True)[(page - 1) * per_page : limit]
        if not chosen:
            return total, []
        ids = [case_id for _, case_id in chosen]
        by_id = {
            r["case_id"]: r
            for r in cur.execute(
                f"SELECT {LIST_COLUMNS} FROM {cases} WHERE case_id IN ({', '.join('?' * len(ids))})",
                ids,
            ).fetchall()
        }
        return total, [by_id[i] for i in ids if i in by_id]

    def _tally(
        self, cur: Cursor, tally: str, unit: str | None, kind: str | None, status: str | None
    ) -> int:
        total = 0
        for place in self._places(unit):
            where, params = ["unit = ?"], [place.unit]
            for column, value in (("kind", kind), ("status", status)):
                if value is not None:
                    where.append(f"{column} = ?")
                    params.append(value)
            value = cur.execute(
                f"SELECT SUM(n) AS n FROM {tally} WHERE {' AND '.join(where)}", params
            ).scalar()
            total += int(value or 0)
        return total

    def _item(self, row: dict[str, Any], today: str) -> dict[str, Any]:
        display = self.engine.privacy.open(row["display"])
        item = {
            "id": row["case_id"],
            "kind": row["kind"],
            "status": row["status"],
            "unit": row["unit"],
            "category": row["category"],
            "opened_at": row["opened_at"],
            "last_event_at": row["last_event_at"],
            "deadline": row["deadline"],
            "overdue": row["deadline"] is not None and row["deadline"] < today,
            "version": int(row["version"]),
            "position": int(row["position"]),
            "names": display.get("names", []),
            # A transfer awaiting the answer of this unit (None: none).
            "transfer_to": row["transfer_to"],
        }
        if row["kind"] == "dispute":
            item["summary"] = display.get("summary")
        if row["kind"] == "correction":
            item["minor"] = bool(row["minor"])
        return item

    # --- indicators ---------------------------------------------------------------------

    def indicators(
        self,
        *,
        kind: str,
        unit: str | None,
        from_: date | str | None = None,
        to: date | str | None = None,
    ) -> dict[str, Any]:
        name = INDICATOR_PROJECTION.get(kind)
        if name is None:
            raise ValueError(f"no indicators for kind {kind!r}")
        start, end = _day(from_, EARLIEST), _day(to, LATEST)
        generation = self.engine.active_generation(name)
        assert generation is not None
        t = self.engine.tables(name, generation)
        tracking = self.engine.tracking_table
        places = self._places(unit)
        today = self.today()
        with self.ct.db.transaction(commit=False) as cur:
            key: tuple[Any, ...] = (kind, repr(places), start, end, today)
            key += (stamp(cur, tracking, name, generation),)
            if kind == "resettlement":  # the bases: their read model and the register
                key += (self._stamp_of(cur, "bases"), self.ct.registers.version(cur))

            def compute() -> dict[str, Any]:
                counts = self._counts(cur, t["counts"], places, start, end)
                if kind == "dispute":
                    # At the centre's subtree or the handling unit's (歸口辦理), once.
                    overdue = self._subtree_count(
                        cur,
                        t["cases"],
                        places,
                        "open_deadline < ?",
                        [today.isoformat()],
                        also="assigned_path",
                    )
                    result = dispute_indicators(counts, overdue)
                elif kind == "resettlement":
                    people = t["people"]
                    now = {
                        "missed_handover": self._subtree_count(
                            cur, people, places, "handover_due < ?", [today.isoformat()]
                        ),
                        "lost_contact": self._subtree_count(
                            cur, people, places, "contact_lost = 1", []
                        ),
                        "under_assistance": self._subtree_count(
                            cur, people, places, "active = 1", []
                        ),
                    }
                    # The bases register (registered bases, their capacity) and who is there now.
                    occupants = self._tables("bases")["occupants"]
                    bases = [
                        item
                        for place in places
                        for item in subtree_bases(self.ct, cur, occupants, place)
                    ]
                    result = resettlement_indicators(
                        counts, population(cur, t, people, places, start, end), now, totals(bases)
                    )
                else:
                    subjects = t["subjects"]
                    persons = population(cur, t, subjects, places, start, end)
                    # From the beginning, the people received up to `to` are those received.
                    received_to_end = (
                        persons.received
                        if start == EARLIEST
                        else received_up_to(cur, subjects, places, end)
                    )
                    missed = CorrectionIndicators.missed_report_ins(
                        cur, t, places, start, end, today.isoformat()
                    )
                    soon = (today + timedelta(days=30)).isoformat()
                    now = {
                        "current": self._subtree_count(cur, subjects, places, "active = 1", []),
                        "missed_report_in": self._subtree_count(
                            cur, subjects, places, "report_due < ?", [today.isoformat()]
                        ),
                        "absconded": self._subtree_count(
                            cur, subjects, places, "absconded = 1", []
                        ),
                        "terms_ending": self._subtree_count(
                            cur,
                            subjects,
                            places,
                            "active_term_end >= ? AND active_term_end <= ?",
                            [today.isoformat(), soon],
                        ),
                        "monitoring": self._subtree_count(
                            cur, subjects, places, "monitoring_until >= ?", [today.isoformat()]
                        ),
                    }
                    result = correction_indicators(counts, received_to_end, now, persons, missed)
                return result

            # A copy: a caller may change what it is given, never what is kept.
            result: dict[str, Any] = copy.deepcopy(
                kept_for(self.ct.db, "indicators").get(key, compute)
            )
        return {
            "kind": kind,
            "unit": unit,
            "from": None if from_ is None else start,
            "to": None if to is None else end,
            "as_of": self.ct.clock.now().isoformat(),
            **result,
        }

    def _counts(
        self, cur: Cursor, table: str, places: list[Place], start: str, end: str
    ) -> dict[str, int]:
        counts: dict[str, int] = {}
        for place in places:
            rows = cur.execute(
                f"SELECT metric, SUM(n) AS n FROM {table} WHERE unit = ? AND day >= ? AND day <= ? "
                "GROUP BY metric",
                (place.unit, start, end),
            ).fetchall()
            for row in rows:
                counts[row["metric"]] = counts.get(row["metric"], 0) + int(row["n"])
        return counts

    def _subtree_count(
        self,
        cur: Cursor,
        table: str,
        places: list[Place],
        condition: str,
        params: list[Any],
        also: str | None = None,
    ) -> int:
        """Rows meeting `condition` whose `path` (or the path column `also`) is in a subtree."""
        total = 0
        for place in places:
            low, high = subtree_range(place.path)
            within = "path >= ? AND path < ?"
            bounds: list[Any] = [low, high]
            if also is not None:
                within = f"(({within}) OR ({also} >= ? AND {also} < ?))"
                bounds += [low, high]
            value = cur.execute(
                f"SELECT COUNT(*) AS n FROM {table} WHERE {condition} AND {within}",
                (*params, *bounds),
            ).scalar()
            total += int(value or 0)
        return total

    def _bases(self, cur: Cursor, table: str, places: list[Place]) -> list[dict[str, Any]]:
        bases: list[dict[str, Any]] = []
        for place in places:
            low, high = subtree_range(place.path)
            bases.extend(
                cur.execute(
                    f"SELECT base_id, unit, occupancy, placed_total FROM {table} "
                    "WHERE path >= ? AND path < ? ORDER BY base_id",
                    (low, high),
                ).fetchall()
            )
        return [
            {
                "base_id": b["base_id"],
                "unit": b["unit"],
                "occupancy": int(b["occupancy"]),
                "placed_total": int(b["placed_total"]),
            }
            for b in bases
        ]

    # --- lists for supervisors -------------------------------------------------------------

    def bases(self, unit: str | None) -> list[dict[str, Any]]:
        """Transitional placement bases in the unit subtree with their occupancy now."""
        t = self._tables("resettlement")
        with self.ct.db.transaction(commit=False) as cur:
            return self._bases(cur, t["bases"], self._places(unit))

    # --- operations -------------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        return self.engine.status()

    def wait_for(self, position: int, timeout: float) -> bool:
        """Waits until every read model includes `position`; False if it timed out."""
        deadline = time.monotonic() + timeout
        pause = 0.01
        while True:
            if all(entry["position"] >= position for entry in self.engine.status()):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(pause, max(deadline - time.monotonic(), 0)))
            pause = min(pause * 2, 0.2)
