"""Units and jurisdiction (屬地管理).

Units form a tree keyed by administrative division codes (GB/T 2260 + GB/T 10114):
province `320000` → city `320100` → county/district `320102` → township/street
`320102001` → village/community `320102001001`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from domain.errors import UnknownUnit

LEVELS = ("province", "city", "county", "township", "village")
_CODE = re.compile(r"^(\d{6}|\d{9}|\d{12})$")


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    parent: str | None
    level: str


def is_unit_code(code: str) -> bool:
    return bool(_CODE.match(code))


def level_of(code: str) -> str:
    """The administrative level a division code names."""
    if not is_unit_code(code):
        raise UnknownUnit(
            f"'{code}' is not an administrative division code (6, 9 or 12 digits)",
            details={"unit": code},
        )
    if len(code) == 12:
        return "village"
    if len(code) == 9:
        return "township"
    if code.endswith("0000"):
        return "province"
    if code.endswith("00"):
        return "city"
    return "county"


def natural_parent(code: str) -> str | None:
    """The parent a code implies by its digits (GB/T 2260 / GB/T 10114)."""
    level = level_of(code)
    if level == "province":
        return None
    if level == "city":
        return code[:2] + "0000"
    if level == "county":
        return code[:4] + "00"
    if level == "township":
        return code[:6]
    return code[:9]


def level_rank(level: str) -> int:
    """0 for province, 4 for village: smaller is higher."""
    return LEVELS.index(level)


def is_at_or_above(code: str, level: str) -> bool:
    """Whether the unit `code` sits at `level` or higher (e.g. county or above)."""
    return level_rank(level_of(code)) <= level_rank(level)


def may_act(user_unit: str, case_unit: str, chain_of: Callable[[str], Sequence[str]]) -> bool:
    """May a user of `user_unit` act on a case handled by `case_unit`?

    Yes when `user_unit` is the case's unit or one of its ancestors; `chain_of(code)`
    returns a unit's chain from itself up to the root.
    """
    return user_unit in chain_of(case_unit)
