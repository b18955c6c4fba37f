"""The one clock, and calendar arithmetic in China Standard Time (UTC+8)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from domain.clock import (
    CST,
    FixedClock,
    SystemClock,
    add_days,
    add_months,
    add_years,
    age_on,
    cst_date,
)


def test_a_fixed_clock_stands_still_until_moved() -> None:
    clock = FixedClock(datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    assert clock.now() == clock.now() == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    clock.advance(timedelta(days=1, hours=2))
    assert clock.now() == datetime(2026, 3, 3, 3, 0, tzinfo=UTC)
    clock.set(datetime(2027, 1, 1, 8, 0, tzinfo=CST))
    assert clock.now() == datetime(2027, 1, 1, 0, 0, tzinfo=UTC)
    assert clock.now().utcoffset() == timedelta(0)


def test_a_fixed_clock_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError):
        FixedClock(datetime(2026, 3, 2))
    clock = FixedClock(datetime(2026, 3, 2, tzinfo=UTC))
    with pytest.raises(ValueError):
        clock.set(datetime(2026, 3, 3))


def test_the_system_clock_tells_aware_utc_time() -> None:
    now = SystemClock().now()
    assert now.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - now) < timedelta(seconds=5)


@pytest.mark.parametrize(
    ("moment", "day"),
    [
        (datetime(2026, 3, 1, 16, 30, tzinfo=UTC), date(2026, 3, 2)),  # 00:30 CST
        (datetime(2026, 3, 1, 15, 59, 59, tzinfo=UTC), date(2026, 3, 1)),  # 23:59:59 CST
        (datetime(2026, 3, 1, 16, 0, tzinfo=UTC), date(2026, 3, 2)),  # midnight CST
        (datetime(2025, 12, 31, 16, 0, tzinfo=UTC), date(2026, 1, 1)),  # new year in CST
        (datetime(2026, 3, 2, 7, 0, tzinfo=timezone(timedelta(hours=-5))), date(2026, 3, 2)),
    ],
)
def test_dates_are_calendar_days_in_china_standard_time(moment: datetime, day: date) -> None:
    assert cst_date(moment) == day


def test_cst_is_eight_hours_ahead_of_utc() -> None:
    assert CST.utcoffset(None) == timedelta(hours=8)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2026, 3, 2), 2, date(2026, 5, 2)),
        (date(2025, 12, 31), 2, date(2026, 2, 28)),  # clamped to February's last day
        (date(2027, 12, 31), 2, date(2028, 2, 29)),  # leap year
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2026, 3, 31), 1, date(2026, 4, 30)),
        (date(2026, 11, 15), 3, date(2027, 2, 15)),  # across the year
        (date(2026, 5, 31), -3, date(2026, 2, 28)),
        (date(2026, 3, 2), 0, date(2026, 3, 2)),
    ],
)
def test_adding_months_keeps_the_day_clamped_to_the_months_end(
    start: date, months: int, expected: date
) -> None:
    assert add_months(start, months) == expected


def test_adding_years_clamps_the_29th_of_february() -> None:
    assert add_years(date(2024, 2, 29), 5) == date(2029, 2, 28)
    assert add_years(date(2024, 2, 29), 4) == date(2028, 2, 29)


def test_adding_days_counts_calendar_days() -> None:
    assert add_days(date(2026, 2, 20), 10) == date(2026, 3, 2)
    assert add_days(date(2026, 3, 2), 0) == date(2026, 3, 2)


def test_age_turns_on_the_birthday() -> None:
    birth = date(2008, 6, 15)
    assert age_on(birth, date(2026, 6, 14)) == 17
    assert age_on(birth, date(2026, 6, 15)) == 18
