"""The resettlement indicators' bases come from the bases register: `transitional_bases`
counts the registered (active) bases of the subtree, whether anyone was ever placed there,
with their `transitional_base_capacity`; `transitional_base_occupancy` the people at them
now (and at base ids older events named that no register holds)."""

from __future__ import annotations

from casetrail.bootstrap import Casetrail
from domain.clock import FixedClock
from projections import engine_for
from projections.queries import ReadModels
from tests.integration.test_registers import (
    QINHUAI,
    REGISTRAR,
    WORKER,
    XUANWU,
    at_base,
    received_person,
)


def bases(ct: Casetrail, unit: str | None) -> tuple[int, int, int]:
    engine_for(ct).catch_up()
    result = ReadModels(ct).indicators(kind="resettlement", unit=unit)
    return (
        result["transitional_bases"],
        result["transitional_base_capacity"],
        result["transitional_base_occupancy"],
    )


def test_registered_bases_count_with_their_capacity_even_when_empty(
    casetrail: Casetrail, clock: FixedClock
) -> None:
    registers = casetrail.registers
    assert bases(casetrail, "320100") == (0, 0, 0)
    small = registers.add("base", XUANWU, "小基地", by=REGISTRAR, entry_id="NJ-XW-01", capacity=3)
    registers.add("base", QINHUAI, "夫子庙基地", by=REGISTRAR, entry_id="NJ-QH-01", capacity=4)
    # Nobody placed yet: the register, not the placements, says how many bases there are.
    assert bases(casetrail, "320100") == (2, 7, 0)
    assert bases(casetrail, XUANWU) == (1, 3, 0)
    first = received_person(casetrail, clock)
    second = received_person(casetrail, clock, unit=XUANWU)
    first.append(WORKER, "PersonPlaced", **at_base(small.id))
    second.append(WORKER, "PersonPlaced", **at_base(small.id))
    assert bases(casetrail, "320100") == (2, 7, 2)
    assert bases(casetrail, XUANWU) == (1, 3, 2)
    assert bases(casetrail, QINHUAI) == (1, 4, 0)
    assert bases(casetrail, None) == (2, 7, 2)
    second.append(WORKER, "PlacementEnded", ended_on="2026-04-15", reason="返家")
    assert bases(casetrail, XUANWU) == (1, 3, 1)
    # A retired base no longer counts.
    registers.retire("NJ-QH-01", by=REGISTRAR, reason="关闭")
    assert bases(casetrail, "320100") == (1, 3, 1)
