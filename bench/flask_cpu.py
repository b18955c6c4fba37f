"""CPU per append through the web app in-process (Flask's test client, no gunicorn, no
sockets): what the HTTP path costs apart from the server and the network.

    .venv/bin/python -m bench.flask_cpu [--cases 60]

Uses a fresh SQLite store under /var/tmp and the Redis of BENCH_REDIS_URL for the
projection signal, as the web process does.
"""

from __future__ import annotations

import argparse
import time

from bench import workload
from bench.stores import fresh_settings
from casetrail.bootstrap import bootstrap
from tests.units import TEST_UNITS
from web.app import create_app
from workers.signals import ProjectionSignal


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=60, help="ten-event dispute cases")
    args = parser.parse_args(argv)
    with fresh_settings("sqlite", "flaskcpu") as settings:
        ct = bootstrap(settings, on_append=ProjectionSignal(settings))
        try:
            ct.directory.load_units(TEST_UNITS)
            _, token = ct.directory.create_user("bench caseworker", "caseworker", workload.UNIT)
            client = create_app(ct).test_client()
            headers = {"Authorization": f"Bearer {token}"}
            events = 0
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(args.cases):
                type_, data = workload.opening()
                body = {"kind": "dispute", "unit": workload.UNIT, "type": type_, "data": data}
                answer = client.post("/api/v1/cases", json=body, headers=headers)
                assert answer.status_code == 201, answer.json
                case_id = answer.json["id"]  # type: ignore[index]
                events += 1
                for type_, data in workload.appends():
                    answer = client.post(
                        f"/api/v1/cases/{case_id}/events",
                        json={"type": type_, "data": data},
                        headers=headers,
                    )
                    assert answer.status_code == 201, answer.json
                    events += 1
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            print(
                f"{events} appends through Flask's test client: "
                f"{1000 * cpu / events:.2f} CPU ms/event, {1000 * wall / events:.2f} ms wall/event"
            )
        finally:
            ct.close()


if __name__ == "__main__":
    main()
