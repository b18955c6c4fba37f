"""Answers kept by the read models' tracking positions: a query over a read model whose
tracking rows have not moved has the same answer (every write to a read model's tables
advances its tracking row in the same transaction), so a screen refreshed while nothing
changed costs no aggregate. Kept per database object (two stores in one process, as in the
tests, have positions of the same numbers), a bounded number, keyed by the query and the
positions; never stale, only unused once a position moves."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Any

from projections.tracking import tracking_name
from store.db import Cursor, Database

KEPT = 512


def stamp(cur: Cursor, tracking_table: str, name: str, generation: int) -> tuple[Any, ...]:
    """The tracking positions of a read model's generation (its shares' included)."""
    low = tracking_name(name, generation)
    return tuple(
        (row["application_name"], int(row["notification_id"]))
        for row in cur.execute(
            f"SELECT application_name, notification_id FROM {tracking_table} "
            "WHERE application_name >= ? AND application_name < ? ORDER BY application_name",
            (low, low + ";"),
        ).fetchall()
    )


class Kept:
    """A bounded map from a query's key (with its stamp) to its answer."""

    def __init__(self, size: int = KEPT) -> None:
        self.size = size
        self._answers: dict[Hashable, Any] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._answers:
                return self._answers[key]
        answer = compute()
        with self._lock:
            if len(self._answers) >= self.size:
                self._answers.clear()
            self._answers[key] = answer
        return answer


_by_database: weakref.WeakKeyDictionary[Database, dict[str, Kept]] = weakref.WeakKeyDictionary()
_by_database_lock = threading.Lock()


def kept_for(db: Database, what: str) -> Kept:
    """The answers of one kind (`what`) kept for this database object; they go with it."""
    with _by_database_lock:
        found = _by_database.setdefault(db, {})
        if what not in found:
            found[what] = Kept()
        return found[what]
