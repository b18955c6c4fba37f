"""Loading a case with 10, 1,000 and 10,000 events: snapshots should keep it flat."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from bench import workload
from bench.append import ACTOR
from bench.readmodels import time_calls
from bench.stats import Rate
from casetrail.bootstrap import Casetrail
from domain.case import Actor
from domain.clock import SystemClock, cst_date

AUDITOR = Actor(user_id="u_bench_auditor", role="auditor", unit="320000")


def case_with(ct: Casetrail, events: int, progress: Callable[[int], None] | None = None) -> str:
    """A dispute in mediation with `events` events (registered, triaged, assigned, sessions)."""
    service = ct.service
    type_, data = workload.opening()
    case_id = service.open_case(ACTOR, "dispute", workload.UNIT, type_, data).id
    steps = workload.appends()
    for _ in range(min(2, events - 1)):
        type_, data = next(steps)
        service.append(ACTOR, case_id, type_, data)
    day = cst_date(SystemClock().now()).isoformat()
    for i in range(max(0, events - 3)):
        service.append(ACTOR, case_id, "MediationSessionHeld", workload.session(day))
        if progress is not None and i % 500 == 499:
            progress(500)
    return case_id


def load_times(ct: Casetrail, case_id: str, repeat: int) -> Rate:
    """Loading the aggregate: the latest snapshot, then the events after it."""
    uuid = UUID(case_id)
    return time_calls(lambda: ct.app.repository.get(uuid), repeat)


def state_times(ct: Casetrail, case_id: str, repeat: int) -> Rate:
    """The audit read of the case's current state (load, derive; the read is recorded)."""
    return time_calls(lambda: ct.reads.case_state(AUDITOR, case_id), repeat)
