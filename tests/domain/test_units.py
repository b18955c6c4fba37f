"""Units and jurisdiction (屬地管理): levels from division codes, natural parents, may_act."""

from __future__ import annotations

import pytest

from domain.errors import UnknownUnit
from domain.units import is_at_or_above, is_unit_code, level_of, level_rank, may_act, natural_parent

PARENTS = {
    "320000": None,
    "320100": "320000",
    "320102": "320100",
    "320102001": "320102",
    "320102001001": "320102001",
    "320104": "320100",
}


def chain_of(code: str) -> list[str]:
    chain: list[str] = []
    current: str | None = code
    while current is not None:
        chain.append(current)
        current = PARENTS[current]
    return chain


@pytest.mark.parametrize(
    ("code", "level"),
    [
        ("320000", "province"),
        ("320100", "city"),
        ("321300", "city"),
        ("320102", "county"),
        ("320102001", "township"),
        ("320102001001", "village"),
    ],
)
def test_the_level_of_a_unit_follows_from_its_code(code: str, level: str) -> None:
    assert level_of(code) == level


@pytest.mark.parametrize("code", ["", "32", "3201", "32010200", "3201020010", "abcdef", "3201o2"])
def test_a_code_of_the_wrong_shape_is_not_a_unit(code: str) -> None:
    assert not is_unit_code(code)
    with pytest.raises(UnknownUnit) as refusal:
        level_of(code)
    assert refusal.value.code == "unknown_unit"
    assert refusal.value.details == {"unit": code}


@pytest.mark.parametrize(("code", "parent"), PARENTS.items())
def test_a_codes_natural_parent_is_the_code_one_level_up(code: str, parent: str | None) -> None:
    assert natural_parent(code) == parent


def test_levels_rank_from_province_down_to_village() -> None:
    ranks = [level_rank(level_of(code)) for code in chain_of("320102001001")]
    assert ranks == [4, 3, 2, 1, 0]


def test_county_or_above_includes_province_city_and_county_only() -> None:
    assert is_at_or_above("320000", "county")
    assert is_at_or_above("320100", "county")
    assert is_at_or_above("320102", "county")
    assert not is_at_or_above("320102001", "county")
    assert not is_at_or_above("320102001001", "county")


@pytest.mark.parametrize("user_unit", ["320102001001", "320102001", "320102", "320100", "320000"])
def test_a_user_may_act_on_a_case_of_their_unit_or_below(user_unit: str) -> None:
    assert may_act(user_unit, "320102001001", chain_of)


@pytest.mark.parametrize(
    ("user_unit", "case_unit"),
    [
        ("320104", "320102"),  # a sibling district
        ("320104", "320102001001"),  # a village in a sibling district
        ("320102001", "320102"),  # a township cannot act on its county's case
        ("320102001001", "320102001"),  # nor a village on its township's
    ],
)
def test_a_user_may_not_act_outside_their_subtree(user_unit: str, case_unit: str) -> None:
    assert not may_act(user_unit, case_unit, chain_of)
