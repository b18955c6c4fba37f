"""A planned case: its kind, its opening unit and its events, each with the moment it is
recorded and the unit and role of the user who records it."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from domain.clock import CST

# The province's figures (DOMAIN.md, from the seed). The rates are the demo's inputs: each
# case's outcome is drawn with them as its probability, and the indicators emerge (demo.spread).
SEED = {
    "disputes_per_year": 300_000,
    "mediation_success_rate": 0.965,  # "above 96%"
    "on_time_rate": 0.97,
    "resettlement_received_six_years": 161_757,
    "placement_rate": 0.953,
    "assistance_rate": 0.993,
    "reoffending_rate_yearly": 0.0127,
    "transitional_bases": 695,
    "transitional_base_people": 3_439,
    "correction_received": 85_673,
    "correction_current": 40_153,
    "correction_completed": 43_641,
    "correction_reoffended": 98,
    "correction_reoffending_per_mille": 1.14,
}

# The history ends on this day; the demo's clock stops there.
HISTORY_END = date(2026, 10, 31)
# Disputes: one year. Resettlement and correction: six years, as the seed's figures.
DISPUTES_FROM = date(2025, 11, 1)
LONG_HISTORY_FROM = date(2020, 11, 1)


@dataclass
class Step:
    at: datetime
    type: str
    data: dict[str, Any]
    role: str  # caseworker | supervisor
    actor_unit: str


@dataclass
class CasePlan:
    kind: str
    unit: str
    steps: list[Step] = field(default_factory=list)
    # What the generator intended (outcome, placed, reoffended year, ...), for the summary.
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def last_at(self) -> datetime | None:
        return self.steps[-1].at if self.steps else None

    def add(
        self,
        rng: random.Random,
        day: date,
        type_: str,
        data: dict[str, Any],
        actor_unit: str,
        role: str = "caseworker",
    ) -> Step:
        """Records `type_` on `day` in office hours, after the case's previous event."""
        at = office_time(rng, day)
        last = self.last_at
        if last is not None and at <= last:
            at = last + timedelta(minutes=rng.randint(1, 40))
        step = Step(at, type_, data, role, actor_unit)
        self.steps.append(step)
        return step

    def until(self, end: datetime) -> None:
        """Drops what would happen after the history ends."""
        self.steps = [step for step in self.steps if step.at <= end]


def office_time(rng: random.Random, day: date) -> datetime:
    """A moment between 08:30 and 17:30 China Standard Time on `day`, in UTC."""
    minutes = rng.randint(8 * 60 + 30, 17 * 60 + 30)
    local = datetime.combine(day, time(minutes // 60, minutes % 60, rng.randint(0, 59)), CST)
    return local.astimezone(UTC)


def history_end() -> datetime:
    return datetime.combine(HISTORY_END, time(23, 59, 59), CST).astimezone(UTC)


def day_between(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randint(0, max(0, (end - start).days)))


def pick(rng: random.Random, weighted: dict[str, float]) -> str:
    keys = list(weighted)
    return rng.choices(keys, weights=[weighted[k] for k in keys])[0]
