"""The console's pages at scale (issue 17): at about 1,000,000 events, the overview's time
p95 ≤ 150 ms and a case page with a 1,000-event history ≤ 200 ms, over HTTP through
gunicorn, signed in as a province supervisor (the widest overview there is).

    .venv/bin/python -m bench.console                          # SQLite, ~1,000,000 events
    .venv/bin/python -m bench.console --backend postgres
    .venv/bin/python -m bench.console --cases 20000            # a quick run (~100,000 events)

Bulk-loads `--cases` disputes (bench/projections.py `load`: about 4.5 events each), appends a
dispute of `--history` events through the service, catches every read model up (what the
worker does), then starts the `web` process and times `GET /console/` and
`GET /console/cases/<id>` (`--repeat` calls each, after two warm-up calls). The times are
the client's, from request to last byte on 127.0.0.1: the server's time and a little more.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time

import requests

from bench import append
from bench.deadlines import bulk_load
from bench.replay import case_with
from bench.stats import percentile
from bench.stores import fresh_settings
from casetrail.bootstrap import bootstrap
from casetrail.config import Settings
from projections import engine_for


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def timed(session: requests.Session, url: str, repeat: int) -> tuple[float, list[float]]:
    """The first call's seconds (nothing kept yet), and the next `repeat` calls' sorted."""
    cold = 0.0
    for n in range(2):
        started = time.perf_counter()
        first = session.get(url, timeout=60)
        if n == 0:
            cold = time.perf_counter() - started
        first.raise_for_status()
        # Signed out, a page leads to the sign-in form: that is not the page to time.
        assert first.url == url and not first.history, f"{url} answered {first.url}"
    found = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = session.get(url, timeout=60)
        response.raise_for_status()
        found.append(time.perf_counter() - started)
    return cold, sorted(found)


def measure(settings: Settings, args: argparse.Namespace) -> dict[str, object]:
    log(f"bulk-loading {args.cases:,} disputes")
    started = time.perf_counter()
    loader, _, _, events = bulk_load(settings, args.cases)
    load_s = time.perf_counter() - started
    loader.close()
    ct = bootstrap(settings)
    log(f"a case of {args.history:,} events")
    long_case = case_with(ct, args.history)
    log("catching the read models up")
    started = time.perf_counter()
    engine_for(ct).catch_up()
    catch_up_s = time.perf_counter() - started
    head = int(ct.app.recorder.max_notification_id() or 0)
    _, token = ct.directory.create_user("bench supervisor", "supervisor", "320000")
    port = append.free_port()
    with append.gunicorn(settings, port, settings.data_dir / "gunicorn.log") as server:
        session = requests.Session()
        form = session.get(f"{server.base}/console/sign-in", timeout=60).text
        csrf = re.search(r'name="csrf" value="([^"]*)"', form)
        assert csrf is not None, "the sign-in form carries no CSRF token"
        signed = session.post(
            f"{server.base}/console/sign-in",
            data={"token": token, "csrf": csrf.group(1)},
            timeout=60,
        )
        signed.raise_for_status()
        overview_cold, overview = timed(session, f"{server.base}/console/", args.repeat)
        case_cold, case_page = timed(
            session, f"{server.base}/console/cases/{long_case}", args.repeat
        )
    ct.close()

    def ms(values: list[float], p: float) -> float:
        return round(percentile(values, p) * 1000, 1)

    return {
        "backend": settings.backend,
        "events": head,
        "bulk": f"{args.cases:,} disputes, {events:,} events in {load_s:.0f} s",
        "catch_up_s": round(catch_up_s, 1),
        "overview_ms": {
            "first": round(overview_cold * 1000, 1),
            "p50": ms(overview, 50),
            "p95": ms(overview, 95),
            "target_p95": 150,
        },
        "case_page_ms": {
            "history": args.history,
            "first": round(case_cold * 1000, 1),
            "p50": ms(case_page, 50),
            "p95": ms(case_page, 95),
            "target": 200,
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--cases", type=int, default=220_000)
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args(argv)
    with fresh_settings(args.backend, "console") as settings:
        result = measure(settings, args)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
