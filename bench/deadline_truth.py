"""What the deadline sweeps must have recorded, computed the slow way from the event streams
(issue 16): the brute force that the property test, the several-process test and the fault
campaign (bench/deadline_faults.py) compare the recorded warnings and breaches with."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from casetrail.bootstrap import Casetrail
from domain.deadlines import DUE_SOON, OVERDUE, RUNNING_STATES, deadlines_of
from store.chain_links import CHAIN_TABLE
from workers.sweeps import DeadlineSweeper, deadline_log_id

Key = tuple[str, ...]
RECORD_TYPES = ("DeadlineWarned", "DeadlineBreached", "DeadlineResolved")


class BruteForce:
    """The warnings, breaches and resolutions a sweep at each moment must have recorded."""

    def __init__(self, ct: Casetrail, leads: dict[str, int]) -> None:
        self.ct = ct
        self.leads = leads
        self.warnings: set[Key] = set()
        self.breaches: set[Key] = set()
        self.resolved: set[Key] = set()

    def sweep_at(self, case_ids: list[str], today: date) -> None:
        recorded_before = self.warnings | self.breaches
        for case_id in case_ids:
            case: Any = self.ct.app.repository.get(UUID(case_id))
            states = deadlines_of(case, today, self.leads)
            running = {(case_id, *s.key) for s in states if s.state in RUNNING_STATES}
            for s in states:
                key = (case_id, *s.key)
                if key in self.resolved:
                    continue
                if s.state == DUE_SOON:
                    self.warnings.add(key)
                if s.state == OVERDUE:
                    self.breaches.add(key)
            for key in recorded_before:
                if key[0] == case_id and key not in running:
                    self.resolved.add(key)


def recorded(sweeper: DeadlineSweeper, case_ids: list[str]) -> dict[str, set[Key]]:
    """The warnings, breaches and resolutions the sweeps recorded for these cases."""
    wanted = set(case_ids)
    found: dict[str, set[Key]] = {"warning": set(), "breach": set(), "resolved": set()}
    for item in sweeper.records():
        if item["case"] not in wanted:
            continue
        key = (item["case"], item["kind"], item["ref"], item["due"])
        found[item["record"]].add(key)
        if item["resolution"] is not None:
            found["resolved"].add(key)
    return found


def chain_counts(ct: Casetrail, case_ids: list[str]) -> dict[str, int]:
    """How many records of each type the logs of these cases hold (duplicates included)."""
    logs = [str(deadline_log_id(case_id)) for case_id in case_ids]
    counts = dict.fromkeys(RECORD_TYPES, 0)
    for start in range(0, len(logs), 500):
        part = logs[start : start + 500]
        for row in ct.db.query(
            f"SELECT event_type, COUNT(*) AS n FROM {CHAIN_TABLE} WHERE case_id IN "
            f"({', '.join('?' for _ in part)}) GROUP BY event_type",
            part,
        ):
            if row["event_type"] in counts:
                counts[row["event_type"]] += int(row["n"])
    return counts
