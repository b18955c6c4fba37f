"""The one clock every rule that depends on "now" reads. Tests set it.

Deadlines are calendar days in China Standard Time (UTC+8), so dates are taken in CST.
"""

from __future__ import annotations

import calendar
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Protocol

CST = timezone(timedelta(hours=8), "CST")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until moved; for tests and for loading history."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self._at = at.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._at

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        with self._lock:
            self._at = at.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._at += delta


def cst_date(moment: datetime) -> date:
    """The calendar date in China Standard Time of a timezone-aware moment."""
    return moment.astimezone(CST).date()


def add_days(day: date, days: int) -> date:
    return day + timedelta(days=days)


def add_months(day: date, months: int) -> date:
    """The same day of the month `months` later, clamped to the month's last day."""
    month_index = day.month - 1 + months
    year = day.year + month_index // 12
    month = month_index % 12 + 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last))


def add_years(day: date, years: int) -> date:
    return add_months(day, 12 * years)


def age_on(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
