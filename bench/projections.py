"""Projection throughput next to the raw notification-log read rate of the same store.

    .venv/bin/python -m bench.projections [--backend sqlite|postgres] [--cases 20000]

Loads `--cases` disputes (4–6 events each, across a province's units) straight through the
domain and the event store, then prints, in one run: the raw log read (with and without
decoding), the first catch-up of all read models, a full rebuild of each, a steady
catch-up of a fresh backlog, and query latencies (p50/p99) at that size.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.readmodels import catch_up, raw_log_read, rebuild_all, time_calls
from bench.stats import Rate, percentile
from bench.stores import fresh_settings
from casetrail.bootstrap import Casetrail, bootstrap
from domain.case import Actor, CaseEvent, Context
from domain.clock import FixedClock, cst_date
from domain.dispute import Dispute
from evidence.chain import ChainEntry
from projections.queries import ReadModels

CITIES = [f"32{n:02d}00" for n in range(1, 14)]
ACTOR = Actor(user_id="u_bench", role="caseworker", unit="320000")
COURSES = (
    (
        "DisputeTriaged",
        "DisputeAssigned",
        "MediationSessionHeld",
        "AgreementReached",
        "DisputeClosed",
    ),
    (
        "DisputeTriaged",
        "DisputeAssigned",
        "MediationSessionHeld",
        "MediationFailed",
        "DisputeClosed",
    ),
    ("DisputeTriaged", "DisputeAssigned"),
    ("MediationRefused", "DisputeClosed"),
)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英"


def units() -> list[dict[str, str]]:
    """Four counties of five streets in each of the 13 cities (the seed's cities are there)."""
    rows = []
    for city in CITIES:
        for c in range(1, 5):
            county = f"{city[:4]}{c:02d}"
            rows.append({"code": county, "name": f"区{county}", "parent": city})
            for s in range(1, 6):
                street = f"{county}{s:03d}"
                rows.append({"code": street, "name": f"街道{street}", "parent": county})
    return rows


def data_for(event_type: str, unit: str, day: str, number: int) -> dict[str, Any]:
    name = lambda k: SURNAMES[(number * 7 + k) % len(SURNAMES)] + GIVEN[(number + k) % len(GIVEN)]  # noqa: E731
    return {
        "DisputeRegistered": {
            "center_unit": unit,
            "category": ("neighbourhood", "labour", "marriage_family", "land")[number % 4],
            "summary": "相邻双方因宅基地界址发生争执",
            "parties": [
                {"name": name(1), "role": "applicant"},
                {"name": name(2), "role": "respondent"},
            ],
            "scope": "local",
            "source": "walk_in",
            "people_involved": 2 + number % 6,
        },
        "DisputeTriaged": {"complexity": "ordinary", "responsible_unit": unit},
        "DisputeAssigned": {
            "handling_body": "人民调解委员会",
            "assigned_unit": unit,
            "mediators": ["调解员"],
        },
        "MediationSessionHeld": {
            "held_on": day,
            "mediators": ["调解员"],
            "attendees": ["双方"],
            "notes": "调解",
        },
        "AgreementReached": {"terms": "赔偿", "form": "written", "performance_due": day},
        "MediationFailed": {"reason": "分歧", "referral": "litigation"},
        "MediationRefused": {"party": "respondent", "reason": "拒绝"},
        "DisputeClosed": {"result_summary": "办结"},
    }[event_type]


def load(ct: Casetrail, clock: FixedClock, cases: int, first: int = 0, chunk: int = 500) -> int:
    """Opens and runs `cases` disputes through the domain; one store transaction a chunk."""
    streets = [u["code"] for u in units() if len(u["code"]) == 9]
    stored = 0
    for start in range(first, first + cases, chunk):
        batch = []
        for number in range(start, min(start + chunk, first + cases)):
            clock.advance(timedelta(minutes=3))
            unit = streets[(number * 31) % len(streets)]
            ctx = Context(actor=ACTOR, now=clock.now())
            day = cst_date(clock.now()).isoformat()  # the registration day is China's
            case = Dispute.open(unit, data_for("DisputeRegistered", unit, day, number), ctx)
            for event_type in COURSES[number % len(COURSES)]:
                case.record(event_type, data_for(event_type, unit, day, number), ctx)
            batch.append(case)
        stored += save_with_chain(ct, batch)
    return stored


def save_with_chain(ct: Casetrail, cases: list[Dispute]) -> int:
    """Saves cases' new events in one store transaction, each with its hash-chain entry
    (what the service does for one case); returns how many events were stored."""
    chain = [
        ChainEntry(type(e).__name__, e.timestamp.isoformat(), e.actor, e.actor_role, e.actor_unit)
        for case in cases
        for e in case.pending_events
        if isinstance(e, CaseEvent)
    ]
    ct.app.save(*cases, chain=chain)  # the new cases' keys in the same transaction
    return len(chain)


def line(label: str, rate: Rate) -> str:
    return f"  {label:<48} {rate.count:>9} events {rate.seconds:>8.2f} s {rate.per_second:>10.0f} events/s"


def latency(label: str, rate: Rate) -> str:
    p50, p99 = percentile(rate.latencies, 50) * 1000, percentile(rate.latencies, 99) * 1000
    return f"  {label:<60} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--backlog", type=int, default=2_000, help="cases for the steady catch-up")
    parser.add_argument("--repeat", type=int, default=200, help="calls per query latency")
    args = parser.parse_args(argv)
    with fresh_settings(args.backend, "projections") as settings:
        clock = FixedClock(datetime(2025, 1, 2, 1, 0, tzinfo=UTC))
        ct = bootstrap(settings, clock=clock)
        try:
            ct.directory.load_units(units())
            started = time.perf_counter()
            events = load(ct, clock, args.cases)
            print(
                f"{args.backend}: {args.cases} cases, {events} events loaded in "
                f"{time.perf_counter() - started:.1f} s"
            )
            print("notification log (the same store):")
            print(line("raw read, batches of 500", raw_log_read(ct)))
            print(line("raw read + decode every event", raw_log_read(ct, decode=True)))
            print("projections (4 read models; events/s of the log):")
            print(line("first catch-up, all read models", catch_up(ct)))
            for name, rate in rebuild_all(ct, each=True).items():
                print(line(f"full rebuild: {name}", rate))
            load(ct, clock, args.backlog, first=args.cases)
            print(line(f"steady catch-up ({args.backlog} new cases)", catch_up(ct)))
            models = ReadModels(ct)
            clock.set(clock.now() + timedelta(days=1))
            calls = {
                "list: province, page 3": lambda: models.list_cases(unit="320000", page=3),
                "list: county, closed disputes": lambda: models.list_cases(
                    kind="dispute", unit="320101", status="closed"
                ),
                "list: province, overdue": lambda: models.list_cases(unit="320000", overdue=True),
                "list: province, name search": lambda: models.list_cases(unit="320000", q="王伟"),
                "indicators: province, disputes, all time": lambda: models.indicators(
                    kind="dispute", unit="320000"
                ),
                "indicators: county, disputes, one month": lambda: models.indicators(
                    kind="dispute", unit="320101", from_="2025-03-01", to="2025-03-31"
                ),
                "indicators: province, correction": lambda: models.indicators(
                    kind="correction", unit="320000"
                ),
            }
            print(f"queries at {args.cases + args.backlog} cases ({args.repeat} calls each):")
            for label, call in calls.items():
                print(latency(label, time_calls(call, args.repeat)))
        finally:
            ct.close()


if __name__ == "__main__":
    main()
