"""The person across cases (人員): one person may be a correction subject, then a
resettlement case, then a party to a dispute. A lookup by ID number or by name answers the
cases that name that person, within the reader's reach and the minors' rules.

Found through the case list's search terms (keyed hashes of whole names and ID numbers,
projections.privacy), never by plaintext; every lookup is recorded in the read-access log
with the query's keyed hash and the total it found (casetrail.audit)."""

from __future__ import annotations

from typing import Any

from casetrail.audit.access import Search
from casetrail.privacy import redact_minor
from domain.case import Actor
from domain.roles import AUDITOR
from projections.case_list import LIST_COLUMNS
from projections.privacy import normalise
from projections.queries import ReadModels

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
        t = models._tables("cases")
        # The whole-word term ("w:" + normalised) under the key the list was built with.
        term = models.engine.privacy_of(t).query_terms(value)[0]
        place = models.engine.place(models.jurisdiction_unit(actor, None) or actor.unit)
        # A minor's case is found only by those who may see who it is (as the search).
        minors_of = None if actor.role == AUDITOR else actor.unit
        today = models.today().isoformat()
        columns = ", ".join(f"l.{c.strip()}" for c in LIST_COLUMNS.split(","))
        with models.ct.db.transaction(commit=False) as cur:
            # The reader's subtree and what is handed down to it, as the list's search.
            scope, scope_params = models.search_scope(cur, t, place, minors_of)
            where = "tm.term = ?" + scope
            params: list[Any] = [term, *scope_params]
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
        search = Search(normalise(value), total, term)
        shown = [str(item["id"]) for item in items]
        models.ct.reads.record_reads(actor, shown, "people", search=search)
        by_kind: dict[str, int] = {}
        for item in items:
            by_kind[item["kind"]] = by_kind.get(item["kind"], 0) + 1
        return {"cases": items, "total": total, "by_kind": by_kind}
