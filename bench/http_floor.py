"""The floor under every HTTP request: server CPU for a request that does no work (an
unknown address, answered 404 by routing), through gunicorn as `bench/append.py` starts
it, next to the same request through the Flask app in-process (no server, no socket).

    .venv/bin/python -m bench.http_floor [--requests 3000]
"""

from __future__ import annotations

import argparse
import http.client
import io
import sys
import time
from typing import Any

from bench import append
from bench.stats import children_of, process_cpu_seconds
from bench.stores import fresh_settings
from casetrail.bootstrap import bootstrap
from web.app import create_app

PATH = "/api/v1/no-such-address"


def in_process(requests: int) -> float:
    """CPU ms a request through `app.wsgi_app`, the environ built by hand."""
    with fresh_settings("sqlite", "floor") as settings:
        ct = bootstrap(settings)
        try:
            app = create_app(ct)

            def environ() -> dict[str, Any]:
                return {
                    "REQUEST_METHOD": "GET",
                    "PATH_INFO": PATH,
                    "QUERY_STRING": "",
                    "SERVER_NAME": "127.0.0.1",
                    "SERVER_PORT": "80",
                    "SERVER_PROTOCOL": "HTTP/1.1",
                    "wsgi.url_scheme": "http",
                    "wsgi.input": io.BytesIO(b""),
                    "wsgi.errors": sys.stderr,
                }

            def start_response(*_: Any) -> None:
                return None

            for _ in range(200):
                b"".join(app(environ(), start_response))
            started = time.process_time()
            for _ in range(requests):
                b"".join(app(environ(), start_response))
            return 1000 * (time.process_time() - started) / requests
        finally:
            ct.close()


def through_gunicorn(requests: int) -> tuple[float, float]:
    """(requests/s, server CPU ms a request) from one keep-alive client."""
    with fresh_settings("sqlite", "floor") as settings:
        bootstrap(settings).close()
        port = append.free_port()
        with append.gunicorn(settings, port, settings.data_dir / "gunicorn.log") as server:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for _ in range(200):
                conn.request("GET", PATH)
                conn.getresponse().read()
            pids = [server.pid, *children_of(server.pid)]
            cpu, started = process_cpu_seconds(pids), time.perf_counter()
            for _ in range(requests):
                conn.request("GET", PATH)
                response = conn.getresponse()
                response.read()
                assert response.status == 404, response.status
            seconds = time.perf_counter() - started
            cpu = process_cpu_seconds(pids) - cpu
            conn.close()
    return requests / seconds, 1000 * cpu / requests


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args(argv)
    flask_ms = in_process(args.requests)
    rate, server_ms = through_gunicorn(args.requests)
    print(f"404 through the Flask app in-process: {flask_ms:.3f} CPU ms a request")
    print(
        f"404 through gunicorn (web/gunicorn_conf.py defaults), one keep-alive client: "
        f"{rate:,.0f} requests/s, {server_ms:.3f} server CPU ms a request"
    )


if __name__ == "__main__":
    main()
