"""What recording a case-list page's reads costs (the read-access log), statement by
statement: a store of bulk disputes, its read models, then `record_reads` for a search
page of 20 cases, repeated, with every SQL statement and transaction boundary timed.

    .venv/bin/python -m bench.read_log [--backend postgres] [--cases 50000] [--calls 50]

On PostgreSQL the statements are psycopg's (timed around `Cursor.execute` and the
transaction context); on SQLite only the whole call is timed.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from bench import readmodels
from bench.projections import load, units
from bench.stores import fresh_settings
from casetrail.bootstrap import bootstrap
from domain.case import Actor
from domain.clock import FixedClock
from projections.queries import ReadModels

SUPERVISOR = Actor(user_id="u_bench_supervisor", role="supervisor", unit="320000")


@contextmanager
def timed_statements() -> Iterator[dict[str, list[float]]]:
    """psycopg's statements and transaction boundaries, timed while inside."""
    from psycopg import Cursor, transaction

    timings: dict[str, list[float]] = defaultdict(list)
    execute, enter, exit_ = (
        Cursor.execute,
        transaction.Transaction.__enter__,
        transaction.Transaction.__exit__,
    )

    def timing(label: Callable[..., str], call: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                timings[label(*args, **kwargs)].append(time.perf_counter() - started)

        return wrapper

    def statement(cursor: Any, query: Any = None, *_: Any, **kwargs: Any) -> str:
        query = kwargs.get("query", query)
        text = query.as_string(cursor.connection) if hasattr(query, "as_string") else str(query)
        return " ".join(text.split())[:80]

    Cursor.execute = timing(statement, execute)  # type: ignore[method-assign]
    transaction.Transaction.__enter__ = timing(lambda *_, **__: "BEGIN", enter)  # type: ignore[method-assign]
    transaction.Transaction.__exit__ = timing(lambda *_, **__: "COMMIT / ROLLBACK", exit_)  # type: ignore[method-assign]
    try:
        yield timings
    finally:
        Cursor.execute = execute  # type: ignore[method-assign]
        transaction.Transaction.__enter__ = enter  # type: ignore[method-assign]
        transaction.Transaction.__exit__ = exit_  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--cases", type=int, default=50_000, help="bulk disputes in the store")
    parser.add_argument("--calls", type=int, default=50, help="timed calls of record_reads")
    args = parser.parse_args(argv)
    with fresh_settings(args.backend, "readlog") as settings:
        ct = bootstrap(settings, clock=FixedClock(datetime(2018, 1, 2, 1, 0, tzinfo=UTC)))
        ct.directory.load_units(units())
        load(ct, ct.clock, args.cases)  # type: ignore[arg-type]
        ct.close()
        ct = bootstrap(settings)
        ct.audit.access.coalesce_seconds = 0  # every call a record (not the coalesced lookup)
        try:
            readmodels.catch_up(ct)
            page = ReadModels(ct).list_cases(unit="320000", q="王")
            cases = [str(item["id"]) for item in page["items"] if item.get("names")]
            for _ in range(10):  # the logs exist and the statements are prepared
                ct.reads.record_reads(SUPERVISOR, cases, "list")
            calls: list[float] = []
            with timed_statements() as timings:
                for _ in range(args.calls):
                    started = time.perf_counter()
                    ct.reads.record_reads(SUPERVISOR, cases, "list")
                    calls.append(time.perf_counter() - started)
            p99 = sorted(calls)[max(0, int(0.99 * len(calls)) - 1)]
            print(
                f"{args.backend}, {args.cases:,} cases: record_reads of a page of "
                f"{len(cases)} cases, {args.calls} calls: p50 "
                f"{1000 * statistics.median(calls):.1f} ms, p99 {1000 * p99:.1f} ms"
            )
            if args.backend == "postgres":
                print("ms a call  per call  statement")
                for text, spent in sorted(timings.items(), key=lambda item: -sum(item[1])):
                    print(
                        f"{1000 * sum(spent) / args.calls:9.2f}  "
                        f"{len(spent) / args.calls:8.1f}  {text}"
                    )
        finally:
            ct.close()


if __name__ == "__main__":
    main()
