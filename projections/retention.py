"""Retention: what has passed its retention period is erased the way a person is erased
(projections.erasure): its data keys destroyed, an act in the erasures stream that holds no
personal data, in one transaction with the keys' destruction; the events stay, so the chain
and the Merkle log verify. Periods and their legal basis: docs/privacy.md.

* Read-access records (網絡安全法 §21: network logs kept no less than six months): the
  cases and search a record names are sealed under the key of its CST month; the month's
  key is destroyed, and its index rows deleted, `access_retention_days` after the month.
  Who read, when, through which endpoint, granted or not, stays: it is in the chain.
* Electronic-monitoring data (社區矯正法 §29: for correction work only): a record's
  monitoring key is destroyed `monitoring_retention_days` after the correction ended (its
  last event). A case still open is never touched.
* Closed records of a kind named in `CASETRAIL_RETENTION_DAYS` (個人信息保護法 §47): the
  record's keys are destroyed that many days after its last event.

Run daily by cron (workers.cron), or `casetrail people retention [--dry-run]`. A run is
idempotent (what is erased has no key left to find) and each batch is one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from casetrail.audit.access import index_moment
from casetrail.bootstrap import Casetrail
from casetrail.personal import (
    ACCESS_KEY_PREFIX,
    KEYS_TABLE,
    MONITORING_KEY_SUFFIX,
    PersonKeys,
    monitoring_key_id,
    record_key_ids,
)
from domain.case import Actor
from domain.clock import CST
from domain.errors import CaseNotFound
from domain.roles import ADMIN
from projections.erasure import (
    Erasures,
    Forgetting,
    append_erasure,
    forget_person_keys,
    scrub_freed_space,
)
from store.access_index import ACCESS_INDEX_TABLE

RETENTION_ACTOR = Actor("retention", ADMIN, "")
REASON = "保存期限屆滿 (retention period ended)"
# Records erased in one act (one transaction).
BATCH = 200


@dataclass
class Due:
    """What has passed its retention period at `now`."""

    now: datetime
    access_months: list[dict[str, Any]] = field(default_factory=list)
    monitoring: list[str] = field(default_factory=list)
    cases: list[dict[str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.access_months or self.monitoring or self.cases)

    def summary(self) -> dict[str, Any]:
        return {
            "at": self.now.isoformat(),
            "access_months": self.access_months,
            "monitoring": self.monitoring,
            "cases": self.cases,
        }


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """The first and the next month's first moment of a CST month `YYYY-MM`."""
    year, number = (int(part) for part in month.split("-"))
    start = datetime(year, number, 1, tzinfo=CST)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=CST)
    return start, end


def due(ct: Casetrail) -> Due:
    """What the job would erase now."""
    settings, now = ct.settings, ct.clock.now()
    found = Due(now)
    kinds = dict(settings.retention_days)
    rows = ct.db.query(f"SELECT key_id FROM {KEYS_TABLE}")
    key_ids = {str(row["key_id"]) for row in rows}
    for key_id in sorted(k for k in key_ids if k.startswith(ACCESS_KEY_PREFIX)):
        month = key_id.removeprefix(ACCESS_KEY_PREFIX)
        start, end = month_bounds(month)
        if now >= end + timedelta(days=settings.access_retention_days):
            count = ct.db.query_one(
                f"SELECT COUNT(DISTINCT position) AS n FROM {ACCESS_INDEX_TABLE} "
                "WHERE recorded_at >= ? AND recorded_at < ?",
                (index_moment(start), index_moment(end)),
            )
            records = int(count["n"]) if count else 0
            found.access_months.append({"month": month, "records": records})
    records_of = sorted(k for k in key_ids if _is_case_id(k))
    for case_id in records_of if kinds else []:
        case = _closed_for(ct, case_id, None, now, kinds)
        if case is not None:
            found.cases.append({"id": case_id, "kind": case.kind})
    whole = {case["id"] for case in found.cases}
    for key_id in sorted(k for k in key_ids if k.endswith(MONITORING_KEY_SUFFIX)):
        case_id = key_id.removesuffix(MONITORING_KEY_SUFFIX)
        if case_id in whole:
            continue  # erased with its record
        if _closed_for(ct, case_id, settings.monitoring_retention_days, now) is not None:
            found.monitoring.append(case_id)
    return found


def _is_case_id(key_id: str) -> bool:
    try:
        return str(UUID(key_id)) == key_id
    except ValueError:
        return False


def _closed_for(
    ct: Casetrail,
    case_id: str,
    days: int | None,
    now: datetime,
    kinds: dict[str, int] | None = None,
) -> Any:
    """The case if it is closed and `days` (or its kind's days) have passed since its last
    event; else None."""
    try:
        case: Any = ct.app.get_case(case_id)
    except CaseNotFound:
        return None
    if case.is_open:
        return None
    if days is None:
        if kinds is None or case.kind not in kinds:
            return None
        days = kinds[case.kind]
    return case if now >= case.last_event_at + timedelta(days=days) else None


def run_retention(ct: Casetrail, *, dry_run: bool = False) -> dict[str, Any]:
    """Erases what is due (see above), in batches of one act each; what was (or, with
    `dry_run`, would be) erased."""
    keys: PersonKeys | None = getattr(ct.app.mapper, "keys", None)
    if keys is None:  # a store from before per-person keys: nothing can expire
        return Due(ct.clock.now()).summary() | {"dry_run": dry_run}
    found = due(ct)
    if dry_run or not found:
        return found.summary() | {"dry_run": dry_run}
    months = found.access_months
    records: list[tuple[str, dict[str, Any]]] = [
        ("monitoring", {"id": c}) for c in found.monitoring
    ]
    records += [("case", case) for case in found.cases]
    batches = [records[i : i + BATCH] for i in range(0, len(records), BATCH)] or [[]]
    for number, batch in enumerate(batches):
        batch_months = months if number == 0 else []
        monitoring = [item["id"] for what, item in batch if what == "monitoring"]
        cases = [item for what, item in batch if what == "case"]
        key_ids = [ACCESS_KEY_PREFIX + m["month"] for m in batch_months]
        key_ids += [monitoring_key_id(case_id) for case_id in monitoring]
        key_ids += [k for case in cases for k in record_key_ids(case["id"])]
        ranges = []
        for month in batch_months:
            start, end = month_bounds(month["month"])
            ranges.append((index_moment(start), index_moment(end)))
        forget = Forgetting.of(ct, [case["id"] for case in cases], key_ids, access_ranges=ranges)
        data = {
            "access_months": [m["month"] for m in batch_months],
            "access_records": sum(int(m["records"]) for m in batch_months),
            "monitoring": monitoring,
            "cases": cases,
            "keys_destroyed": len(key_ids),
        }
        append_erasure(ct, RETENTION_ACTOR, REASON, Erasures.RetentionExpired, data, also=forget)
        keys.forget(key_ids)
        forget_person_keys(ct, [case["id"] for case in cases])
    scrub_freed_space(ct)
    return found.summary() | {"dry_run": False}
