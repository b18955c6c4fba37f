"""The person across cases (人員): one person may be a correction subject, then a
resettlement case, then a party to a dispute. A lookup by ID number or by name answers the
cases that name that person, within the reader's reach and the minors' rules.

Found through the case list's search terms (keyed hashes of whole names and ID numbers,
projections.privacy), never by plaintext; every lookup is recorded in the read-access log
with the query's keyed hash and the total it found (casetrail.audit)."""

from __future__ import annotations

from typing import Any

from casetrail.privacy import redact_minor
from domain.case import Actor
from domain.roles import AUDITOR
from projections.queries import LIST_COLUMNS, ReadModels
from projections.readmodel import subtree_range

# A lookup answers at most this many cases (newest first); `total` counts them all.
MAX_CASES = 200


class People:
    def __init__(self, models: ReadModels) -> None:
        self.models = models

    def lookup(
        self, actor: Actor, *, id_number: str | None = None, name: str | None = None
    ) -> dict[str, Any]:
        """The cases within `actor`'s reach that name the person with this ID number (or
        this whole name), newest first."""
        value = id_number if id_number is not None else name
        assert value is not None
        models = self.models
        privacy = models.engine.privacy
        term = privacy.query_terms(value)[0]  # the whole-word term: "w:" + normalised
        place = models.engine.place(models.jurisdiction_unit(actor, None) or actor.unit)
        t = models._tables("cases")
        # A minor's case is found only by those who may see who it is (as the search).
        minors_of = None if actor.role == AUDITOR else actor.unit
        where = "tm.term = ? AND tm.path >= ? AND tm.path < ?"
        params: list[Any] = [term, *subtree_range(place.path)]
        if minors_of is not None:
            where += " AND (tm.confidential IS NULL OR tm.confidential = ?)"
            params.append(minors_of)
        today = models.today().isoformat()
        columns = ", ".join(f"l.{c.strip()}" for c in LIST_COLUMNS.split(","))
        with models.ct.db.transaction(commit=False) as cur:
            total = int(
                cur.execute(
                    f"SELECT COUNT(DISTINCT tm.case_id) AS n FROM {t['terms']} tm WHERE {where}",
                    params,
                ).scalar()
            )
            rows = cur.execute(
                f"SELECT DISTINCT {columns} FROM {t['terms']} tm "
                f"JOIN {t['list']} l ON l.case_id = tm.case_id WHERE {where} "
                "ORDER BY l.opened_at DESC, l.case_id DESC LIMIT ?",
                [*params, MAX_CASES],
            ).fetchall()
        items = [redact_minor(actor, models._item(row, today)) for row in rows]
        search = {"query": term, "total": total}
        shown = [str(item["id"]) for item in items]
        models.ct.reads.record_reads(actor, shown, "people", search=search)
        by_kind: dict[str, int] = {}
        for item in items:
            by_kind[item["kind"]] = by_kind.get(item["kind"], 0) + 1
        return {"cases": items, "total": total, "by_kind": by_kind}
