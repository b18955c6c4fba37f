"""What a read-model author needs: a `Projection` with its tables (`Tables`), the handlers
of the event classes it applies (`@on(...)`), and the `Batch` they write through, which
keeps rows and (unit, day, metric) counters of a unit and every unit above it (`Place`).

A read model dispatches on event classes, so a renamed or removed event fails at import,
and asks the domain for statuses (`event.leads_to`), deadlines and minority.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any, ClassVar, Protocol, TypeVar

from domain.case import CaseEvent
from domain.clock import cst_date
from domain.kinds import KINDS
from projections.privacy import Privacy
from store.db import Cursor

# Unit chains are stored root first in columns u0..u5 (province → village and one more).
UNIT_DEPTH = 6


class Tables:
    """The physical table names of one generation of a read model."""

    def __init__(self, name: str, generation: int, clustered: str = "") -> None:
        self.name = name
        self.generation = generation
        # Table option: rows stored in their primary key's B-tree (the store's, if any).
        self.clustered = clustered

    def __getitem__(self, table: str) -> str:
        return f"rm_{self.name}_{table}_{self.generation}"


@dataclass(frozen=True)
class Place:
    """A handling unit and the chain above it, as read models store it."""

    unit: str
    chain: tuple[str, ...]  # root first

    @cached_property
    def path(self) -> str:
        """`320000/320100/320102/`: a unit's subtree is a prefix range."""
        return "".join(code + "/" for code in self.chain)

    def columns(self) -> list[str | None]:
        chain = list(self.chain[:UNIT_DEPTH])
        return chain + [None] * (UNIT_DEPTH - len(chain))


def subtree_range(path: str) -> tuple[str, str]:
    """Paths at or below `path` (which ends in '/') are in [path, upper)."""
    return path, path[:-1] + "0"  # '0' sorts right after '/'


class Context(Protocol):
    """What a batch needs of the engine that runs it."""

    def privacy_of(self, tables: Tables) -> Privacy: ...

    def place(self, unit: str) -> Place: ...


class Batch:
    """What one transaction's worth of events may touch: rows, counters, unit chains."""

    def __init__(self, cur: Cursor, tables: Tables, engine: Context) -> None:
        self.cur = cur
        self.t = tables
        self.engine = engine
        self.counters: dict[tuple[str, str, str, str], int] = defaultdict(int)
        # Rows a projection keeps in memory for the batch and writes in finish().
        self.scratch: dict[str, Any] = {}
        # Rows read through row(): written back once, at the end of the batch.
        self._rows: dict[str, dict[Any, dict[str, Any]]] = {}
        self._new: dict[str, set[Any]] = defaultdict(set)
        self._changed: dict[tuple[str, Any], set[str]] = defaultdict(set)
        self._keys: dict[str, str] = {}
        self._later: list[tuple[str, Sequence[Any]]] = []

    @property
    def privacy(self) -> Privacy:
        """Display fields' cipher and search terms' key of this batch's generation."""
        return self.engine.privacy_of(self.t)

    def place(self, unit: str) -> Place:
        return self.engine.place(unit)

    def count(
        self, table: str, place: Place | Sequence[str], day: date | str, metric: str, n: int = 1
    ) -> None:
        """Adds `n` to a (unit, day, metric) counter of the unit and of every unit above it
        (or of each unit of a sequence: chains already joined, each unit once)."""
        key_day = day if isinstance(day, str) else day.isoformat()
        for unit in place.chain if isinstance(place, Place) else place:
            self.counters[(table, unit, key_day, metric)] += n

    def later(self, sql: str, params: Sequence[Any] = ()) -> None:
        """A write, made in order when the batch is written (apply() only reads)."""
        self._later.append((sql, params))

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        return self.cur.execute(sql, params).fetchone()

    def row(self, table: str, key_column: str, key: Any) -> dict[str, Any] | None:
        """A row by its key, read once a batch; change it with `update()`."""
        rows = self._rows.setdefault(table, {})
        if key not in rows:
            found = self.one(f"SELECT * FROM {self.t[table]} WHERE {key_column} = ?", (key,))
            if found is None:
                return None
            rows[key] = dict(found)
            self._keys[table] = key_column
        return rows[key]

    def insert(self, table: str, key_column: str, row: dict[str, Any]) -> None:
        """A new row (every column), written at the end of the batch."""
        key = row[key_column]
        rows = self._rows.setdefault(table, {})
        if key in rows:
            return  # the opening event is applied once (tracking sees to that)
        rows[key] = dict(row)
        self._new[table].add(key)
        self._keys[table] = key_column

    def update(self, table: str, key: Any, **changes: Any) -> None:
        row = self._rows[table][key]
        for column, value in changes.items():
            if row[column] != value:
                row[column] = value
                self._changed[(table, key)].add(column)

    def _write_rows(self) -> None:
        for table, rows in self._rows.items():
            name, key_column = self.t[table], self._keys[table]
            new = [rows[key] for key in sorted(self._new[table], key=str)]
            if new:
                names = list(new[0])
                self.cur.insert_many(
                    name,
                    names,
                    [[row[c] for c in names] for row in new],
                    on_conflict=f"ON CONFLICT ({key_column}) DO NOTHING",
                )
            updates: dict[tuple[str, ...], list[list[Any]]] = defaultdict(list)
            for key in rows:
                changed = self._changed.get((table, key))
                if changed and key not in self._new[table]:
                    columns = tuple(sorted(changed))
                    updates[columns].append([*(rows[key][c] for c in columns), key])
            for columns, params in updates.items():
                self.cur.update_many(name, columns, key_column, params)
        self._rows.clear()
        self._new.clear()
        self._changed.clear()

    def flush(self) -> None:
        """Writes the rows kept for the batch and the counters; touched counter keys are
        written even at zero, so the rows do not depend on where batch boundaries fell."""
        self._write_rows()
        for sql, params in self._later:
            self.cur.execute(sql, params)
        self._later.clear()
        by_table: dict[str, list[tuple[str, str, str, int]]] = defaultdict(list)
        for (table, unit, day, metric), n in sorted(self.counters.items()):
            by_table[table].append((unit, day, metric, n))
        for table, rows in by_table.items():
            name = self.t[table]
            self.cur.insert_many(
                name,
                ("unit", "day", "metric", "n"),
                rows,
                on_conflict=f"ON CONFLICT (unit, day, metric) DO UPDATE SET n = {name}.n + excluded.n",
            )
        self.counters.clear()


def counter_table(t: Tables, table: str = "counts") -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {t[table]} (unit TEXT NOT NULL, day TEXT NOT NULL, "
        f"metric TEXT NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (unit, day, metric)){t.clustered}"
    ]


def event_day(event: CaseEvent, field: str | None = None) -> str:
    """The day an event counts on: a date its data names, else its recorded day (CST)."""
    if field:
        value = event.data.get(field)
        if isinstance(value, str) and value:
            return value[:10]
    return cst_date(event.timestamp).isoformat()


def kind_by_event_class() -> dict[type, str]:
    return {
        event_class: kind for kind, case_class in KINDS.items() for event_class in case_class.events
    }


Handler = TypeVar("Handler", bound=Callable[..., Any])


def on(*event_classes: type[CaseEvent]) -> Callable[[Handler], Handler]:
    """Registers a read-model method as what events of these classes do to its tables."""

    def register(method: Handler) -> Handler:
        method._applies_to = event_classes  # type: ignore[attr-defined]
        return method

    return register


class Projection:
    """A read model: its tables and how each event changes them.

    The default `apply()` calls the handler registered with `@on(EventClass)` for the
    event's class as `handler(self, batch, event)`; events of other classes change nothing.
    """

    name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]
    # Relative cost per event, to balance a rebuild over processes.
    weight: ClassVar[float] = 1.0
    # Whether a rebuild may fill it in shares of cases, one process each: every row and
    # every write of apply()/finish() concerns one case, or adds to a counter.
    partitionable: ClassVar[bool] = False
    # The case kinds whose events it applies (None: all); a batch decodes only these.
    # Without a value of its own, the kinds of the event classes it has handlers for.
    kinds: ClassVar[frozenset[str] | None] = None
    # The layout of the tables; a generation of an older layout is rebuilt by catch_up().
    version: ClassVar[int] = 1
    # Whether its rows hold keyed hashes of the search-term key (search terms, a person's
    # ID number): a generation built under another key is rebuilt by catch_up().
    search_keyed: ClassVar[bool] = False
    handlers: ClassVar[dict[type[CaseEvent], Callable[..., Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handlers: dict[type[CaseEvent], Callable[..., Any]] = {}
        for klass in reversed(cls.__mro__):
            for attribute in vars(klass).values():
                for event_class in getattr(attribute, "_applies_to", ()):
                    handlers[event_class] = attribute
        cls.handlers = handlers
        if handlers and "kinds" not in cls.__dict__:
            kinds = kind_by_event_class()
            cls.kinds = frozenset(kinds[event_class] for event_class in handlers)

    def create_statements(self, t: Tables) -> list[str]:
        raise NotImplementedError

    def apply(self, b: Batch, event: CaseEvent, kind: str, position: int) -> None:
        handler = self.handlers.get(type(event))
        if handler is not None:
            handler(self, b, event)

    def finish(self, b: Batch) -> None:
        """Writes what the batch kept in memory; called once before the commit."""
