"""Loads a synthetic province through the application service, with the clock moved along.

Every event goes through `CaseService.open_case`/`append`, so the demo obeys the same rules
as the API; a refusal stops the load and names the event type and the rule. The cases'
content is fixed by the seed (ids and user tokens are random, as in production).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from casetrail.bootstrap import Casetrail
from demo import correction, disputes, divisions, indicators, resettlement
from demo.plan import SEED, CasePlan, history_end
from demo.province import Province, Staff
from domain.case import Actor
from domain.clock import FixedClock
from domain.errors import CasetrailError
from domain.kinds import KINDS
from domain.registers import BASE
from domain.roles import ADMIN


@dataclass(frozen=True)
class DemoSize:
    disputes: int
    resettlement: int
    correction: int
    bases: int
    townships_per_county: int

    @staticmethod
    def bases_for(resettlement: int) -> int:
        """The seed's 695 bases for 161,757 people received, scaled (one at least, for the
        placements at a base to name one)."""
        if resettlement <= 0:
            return 0
        share = resettlement / SEED["resettlement_received_six_years"]
        return max(1, round(SEED["transitional_bases"] * share))

    @classmethod
    def at_scale(cls, scale: float) -> DemoSize:
        """`scale` 1.0 is Jiangsu: a year of disputes, six years of the other two kinds."""
        return cls(
            disputes=round(SEED["disputes_per_year"] * scale),
            resettlement=round(SEED["resettlement_received_six_years"] * scale),
            correction=round(SEED["correction_received"] * scale),
            bases=cls.bases_for(round(SEED["resettlement_received_six_years"] * scale)),
            townships_per_county=max(2, min(13, round(scale * 600))),
        )


@dataclass
class DemoResult:
    size: DemoSize
    seed: int
    units: int
    users: int
    cases: int
    events: int
    seconds: float
    intended: dict[str, Any]
    kinds_skipped: list[str] = field(default_factory=list)
    # Acts of the administration log (the bases registered, and the log's opening event).
    administration_events: int = 0

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class DemoRefused(Exception):
    """The service refused a planned event: a generator bug or a changed rule."""


def plan_province(
    province: Province, size: DemoSize, seed: int
) -> tuple[list[CasePlan], list[str]]:
    """Every case of the demo, its events planned and dated; deterministic for `seed`."""
    plans: list[CasePlan] = []
    skipped: list[str] = []
    end = history_end()
    planners: dict[str, Callable[[random.Random], list[CasePlan]]] = {
        # The turns into criminal cases draw from a generator of their own (demo.disputes).
        "dispute": lambda rng: disputes.plan_disputes(
            rng, province, size.disputes, turns=random.Random(f"{seed}/dispute/turns")
        ),
        "resettlement": lambda rng: resettlement.plan_resettlement(
            rng, province, size.resettlement, size.bases
        ),
        "correction": lambda rng: correction.plan_correction(rng, province, size.correction),
    }
    for kind, planner in planners.items():
        if kind not in KINDS:
            skipped.append(kind)
            continue
        # One generator per kind: each kind's cases are the same whatever the others do.
        for plan in planner(random.Random(f"{seed}/{kind}")):
            plan.until(end)
            if plan.steps:
                plans.append(plan)
    return plans, skipped


def load_demo(
    ct: Casetrail,
    size: DemoSize,
    *,
    seed: int = 2009,
    progress: Callable[[int], None] | None = None,
    on_plan: Callable[[int], None] | None = None,
) -> DemoResult:
    """Builds the province's units and users, then writes every planned event in time order.

    `ct` must run on a FixedClock: it is set to each event's moment before the event is sent.
    `on_plan(n)` is told the number of events before writing; `progress(k)` after k more.
    """
    clock = ct.clock
    if not isinstance(clock, FixedClock):
        raise TypeError("the demo moves the clock along: bootstrap casetrail with a FixedClock")
    started = time.perf_counter()
    province = Province.build(size.townships_per_county)
    units = ct.directory.load_units(province.units())
    staff_rng = random.Random(f"{seed}/staff")
    staff = Staff.hire(ct.directory, province, staff_rng)
    bases = register_bases(ct, province, size.bases) if "resettlement" in KINDS else 0
    plans, skipped = plan_province(province, size, seed)
    order = sorted(
        (step.at, case_index, step_index)
        for case_index, plan in enumerate(plans)
        for step_index, step in enumerate(plan.steps)
    )
    if on_plan is not None:
        on_plan(len(order))
    ids: list[str] = [""] * len(plans)
    # Events written: the planned ones and those a case records itself (a minor's seal).
    versions = [0] * len(plans)
    written = 0
    actor_rng = random.Random(f"{seed}/actors")
    service = ct.service
    done = 0
    for at, case_index, step_index in order:
        plan = plans[case_index]
        step = plan.steps[step_index]
        clock.set(at)
        actor = staff.actor(actor_rng, step.role, step.actor_unit)
        try:
            if step_index == 0:
                answer = service.open_case(actor, plan.kind, plan.unit, step.type, step.data)
                ids[case_index] = answer.id
            else:
                answer = service.append(actor, ids[case_index], step.type, step.data)
        except CasetrailError as error:
            raise DemoRefused(
                f"{plan.kind} case #{case_index}, event {step_index + 1} {step.type} at "
                f"{at.isoformat()}: {error.code}: {error.message}"
            ) from error
        written += answer.version - versions[case_index]
        versions[case_index] = answer.version
        done += 1
        if progress is not None and done % 100 == 0:
            progress(100)
    if progress is not None and done % 100:
        progress(done % 100)
    clock.set(max(clock.now(), history_end()))
    intended = indicators.indicators(
        (str(i), plan.kind, step.type, step.data)
        for i, plan in enumerate(plans)
        for step in plan.steps
    )
    return DemoResult(
        size=size,
        seed=seed,
        units=units,
        users=staff.users,
        cases=len(plans),
        events=written,
        seconds=time.perf_counter() - started,
        intended=intended,
        kinds_skipped=skipped,
        administration_events=bases + 1 if bases else 0,
    )


def register_bases(ct: Casetrail, province: Province, count: int) -> int:
    """The transitional bases the plan places people at, registered by an admin of the
    province first: a placement must name a registered base (casetrail.registers)."""
    admin = Actor(user_id="demo-admin", role=ADMIN, unit=divisions.PROVINCE)
    bases = resettlement.base_register(province, count)
    for base_id, city in bases:
        ct.registers.add(
            BASE,
            city,
            f"{province.names[city]}过渡性安置基地{base_id[-3:]}号",
            by=admin,
            entry_id=base_id,
            capacity=resettlement.BASE_CAPACITY,
        )
    return len(bases)


def demo_clock() -> FixedClock:
    """The clock the demo starts from: the first event sets it."""
    return FixedClock(datetime.fromisoformat("2020-01-01T00:00:00+00:00"))
