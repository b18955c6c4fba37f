"""gunicorn's threaded worker, keeping a busy keep-alive connection on its thread.

In `gthread`, every request of a keep-alive connection travels: the pool thread answers,
hands the connection back to the main thread (a future's callback through a pipe), the
main thread registers it with its poller, wakes when the next request arrives,
unregisters it and submits it to the pool again, where a thread wakes to read it. With
a client that sends its next request as soon as it has the answer (a script, a service
in front of casetrail), that round trip is most of gunicorn's CPU per request
(docs/append-path.md). Here the pool thread waits up to `LINGER_SECONDS` for the
connection's next request and serves it itself; only when none comes in time, or other
connections are waiting for a thread, does the connection go back to the main thread as
before. Everything else (parsing, timeouts, graceful stop, HTTP/2) is gthread's own.
"""

from __future__ import annotations

import select
import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

# How long a pool thread waits for a keep-alive connection's next request.
LINGER_SECONDS = 0.002
# At most this many requests in a row on one thread, then back through the main thread
# (which also lets the worker count the connection's idle time as usual).
MAX_IN_A_ROW = 100
# Every worker wakes when a connection arrives; one holding `n` connections waits
# n × this (at most ACCEPT_YIELD_MAX) before accepting, so the least busy takes it.
ACCEPT_YIELD_SECONDS = 0.002
ACCEPT_YIELD_MAX = 0.01


class KeepAliveThreadWorker(ThreadWorker):
    def accept(self, listener: Any) -> None:
        # Keep-alive connections stay with the worker that accepted them: four clients
        # connecting at once all went to one of two workers, which then ran their
        # requests on one core (the GIL) while the other worker idled. Least connections
        # first, by letting the less busy workers (woken by the same readiness) go first.
        if self.nr_conns:
            time.sleep(min(ACCEPT_YIELD_SECONDS * self.nr_conns, ACCEPT_YIELD_MAX))
        super().accept(listener)

    def handle(self, conn: Any) -> Any:
        result = super().handle(conn)
        served = 1
        while result is True and served < MAX_IN_A_ROW and self._next_request_soon(conn):
            result = super().handle(conn)
            served += 1
        return result

    def _next_request_soon(self, conn: Any) -> bool:
        """Whether to serve the connection's next request on this thread."""
        if not self.alive or getattr(conn, "is_http2", False):
            return False
        if conn.parser is None or conn.parser.unreader.buf.getvalue():
            # Bytes read ahead: gthread's own path (finish_request) submits them again.
            return False
        work_queue = getattr(self.tpool, "_work_queue", None)
        if work_queue is not None and not work_queue.empty():
            return False  # other connections wait for a thread: give this one back
        poller = select.poll()
        poller.register(conn.sock, select.POLLIN | select.POLLPRI)
        try:
            return bool(poller.poll(LINGER_SECONDS * 1000))
        except OSError:
            return False
