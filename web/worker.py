"""gunicorn's threaded worker: a thread for a request only once the request has arrived,
a keep-alive connection's next request on the thread that answered the last one, and
refusals in the one JSON error shape.

**A thread only for a whole request.** In `gthread` a pool thread reads the request, so a
client that sends its headers and then trickles (or never finishes) its body holds a
thread for as long as it likes: eight such clients held every thread of a two-worker
service and `/healthz` timed out (issue 21). Here the worker's main thread reads what a
connection sends, without blocking, into a buffer, and hands the connection to the pool
only when its request is whole (the head, and the body its `Content-Length` or chunked
coding announces); the parser then reads it from that buffer. A request that is not whole
within `ARRIVAL_SECONDS` is answered 408 and closed; a head above `MAX_HEAD_BYTES` 431, a
body above `MAX_BODY_BYTES` 413 (the app refuses far less, `web/app.py`), without a thread.

**A busy keep-alive connection stays on its thread.** In `gthread`, every request of a
keep-alive connection travels: the pool thread answers, hands the connection back to the
main thread (a future's callback through a pipe), the main thread registers it with its
poller, wakes when the next request arrives, unregisters it and submits it to the pool
again, where a thread wakes to read it. With a client that sends its next request as soon
as it has the answer (a script, a service in front of casetrail), that round trip is most
of gunicorn's CPU per request (docs/append-path.md). Here the pool thread waits up to
`LINGER_SECONDS` for the connection's next request and serves it itself if it is whole
(peeked, not read); otherwise the connection goes back to the main thread as above.

**Refusals as JSON.** What gunicorn refuses before the app sees it (a bad request line,
414, 431, a bad chunk) it answers with an HTML page; here with the API's error shape.

Everything else (parsing, timeouts, graceful stop) is gthread's own. TLS and HTTP/2
connections (not how casetrail is served) skip the reading ahead.
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import selectors
import socket
import time
from collections import deque
from functools import partial
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

from web.errors import HTTP_CODES

# How long a pool thread waits for a keep-alive connection's next request.
LINGER_SECONDS = 0.002
# At most this many requests in a row on one thread, then back through the main thread
# (which also lets the worker count the connection's idle time as usual).
MAX_IN_A_ROW = 100
# Every worker wakes when a connection arrives; one holding `n` connections waits
# n × this (at most ACCEPT_YIELD_MAX) before accepting, so the least busy takes it.
ACCEPT_YIELD_SECONDS = 0.002
ACCEPT_YIELD_MAX = 0.01
# A request must arrive whole this long after its connection was accepted (or, on a
# keep-alive connection, after its first byte).
ARRIVAL_SECONDS = 10.0
# Bounds of what the main thread keeps for a connection: a head (request line and
# headers) and a body. casetrail's requests are a few kB.
MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
RECV_BYTES = 64 * 1024

CONTENT_LENGTH = re.compile(rb"\ncontent-length[ \t]*:[ \t]*([^\r\n]*)")
TRANSFER_ENCODING = re.compile(rb"\ntransfer-encoding[ \t]*:[ \t]*([^\r\n]*)")
EXPECT_CONTINUE = re.compile(rb"\nexpect[ \t]*:[ \t]*100-continue")
HTTP_11 = re.compile(rb"^[^\r\n]* HTTP/1\.1\r?\n")


# What a request's bytes so far say (`arrival`): whole, not yet, or an HTTP status.
WHOLE = 0
PARTIAL = 1


def head_end(data: bytes | bytearray) -> int:
    """Where the body starts (after the empty line), or -1 while the head is arriving."""
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n")
    ends = [end + 4 for end in (crlf,) if end >= 0] + [end + 2 for end in (lf,) if end >= 0]
    return min(ends) if ends else -1


def arrival(data: bytes | bytearray) -> int:
    """`WHOLE`, `PARTIAL`, or the status to refuse the request with.

    "Whole" errs toward handing over: what the head says that this does not understand
    (an invalid length, an unknown coding), gunicorn's parser refuses from the buffer."""
    body = head_end(data)
    if body < 0:
        return 431 if len(data) > MAX_HEAD_BYTES else PARTIAL
    if body > MAX_HEAD_BYTES:
        return 431
    head = bytes(data[:body]).lower()
    coding = TRANSFER_ENCODING.search(head)
    if coding is not None:
        if b"chunked" not in coding.group(1):
            return WHOLE  # gunicorn refuses the coding (501)
        return chunked_arrival(data, body)
    length = CONTENT_LENGTH.search(head)
    if length is None:
        return WHOLE
    text = length.group(1).strip()
    if not text.isdigit() or len(text) > 12:
        return WHOLE  # gunicorn refuses the length (400)
    size = int(text)
    if size > MAX_BODY_BYTES:
        return 413
    return WHOLE if len(data) - body >= size else PARTIAL


def chunked_arrival(data: bytes | bytearray, start: int) -> int:
    """Walks the chunks: whole after the last chunk and the trailers' empty line."""
    at = start
    while True:
        line_end = data.find(b"\n", at)
        if line_end < 0:
            return PARTIAL
        size_text = bytes(data[at:line_end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return WHOLE  # gunicorn refuses the chunk (400)
        if at - start + size > MAX_BODY_BYTES:
            return 413
        if size == 0:
            # Trailers (usually none), up to an empty line.
            rest = data[line_end + 1 :]
            if rest.startswith(b"\r\n") or rest.startswith(b"\n"):
                return WHOLE
            return WHOLE if head_end(b"\n" + rest) >= 0 else PARTIAL
        at = line_end + 1 + size
        if len(data) < at + 2:
            return PARTIAL
        at += 2 if data[at : at + 2] == b"\r\n" else 1


def json_refusal(status: int, reason: str, message: str) -> bytes:
    body = json.dumps(
        {"error": {"code": HTTP_CODES.get(status, "error"), "message": message, "details": {}}},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        "Content-Type: application/json\r\nCache-Control: no-store\r\n"
        f"X-Content-Type-Options: nosniff\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1") + body


REFUSALS = {
    400: ("Bad Request", "The request is not valid HTTP."),
    403: ("Forbidden", "The request is refused."),
    408: ("Request Timeout", f"The request did not arrive whole within {ARRIVAL_SECONDS:g} s."),
    413: ("Content Too Large", "The request body is too large."),
    414: ("URI Too Long", "The request line is too long."),
    417: ("Expectation Failed", "The request's Expect header cannot be met."),
    431: ("Request Header Fields Too Large", "The request's headers are too large."),
    500: ("Internal Server Error", "Something went wrong on our side."),
    501: ("Not Implemented", "The request's transfer coding is not supported."),
}


class _Captured:
    """Stands in for the client's socket while gunicorn writes its HTML refusal."""

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0

    def sendall(self, data: bytes) -> None:
        self.data += data

    send = sendall


class KeepAliveThreadWorker(ThreadWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Connections whose request is still arriving, oldest first.
        self.arriving: deque[Any] = deque()

    def init_process(self) -> None:
        cfg = self.cfg
        self.reads_ahead = (
            not cfg.is_ssl
            and getattr(cfg, "protocol", "http") == "http"
            and getattr(cfg, "http2_cleartext", "off") == "off"
        )
        super().init_process()

    # --- a thread only for a whole request -------------------------------------------

    def accept(self, listener: Any) -> None:
        # Keep-alive connections stay with the worker that accepted them: four clients
        # connecting at once all went to one of two workers, which then ran their
        # requests on one core (the GIL) while the other worker idled. Least connections
        # first, by letting the less busy workers (woken by the same readiness) go first.
        if self.nr_conns:
            time.sleep(min(ACCEPT_YIELD_SECONDS * self.nr_conns, ACCEPT_YIELD_MAX))
        super().accept(listener)

    def enqueue_req(self, conn: Any) -> None:
        """Every way a connection reaches the pool (accepted, readable again, bytes left
        over from the last request) passes here: it waits for its whole request first."""
        if not self.reads_ahead or getattr(conn, "whole", False):
            conn.whole = False
            super().enqueue_req(conn)
            return
        conn.arrived = bytearray()
        if conn.parser is not None:  # bytes read ahead by the last request's parser
            conn.arrived += conn.parser.unreader.take_buffered()
        conn.arrival_deadline = time.monotonic() + ARRIVAL_SECONDS
        conn.waiting = False
        conn.sock.setblocking(False)
        self._read_arriving(conn)

    def _read_arriving(self, conn: Any, _sock: Any = None) -> None:
        """Reads what has come: the connection goes to the pool once its request is
        whole, else waits in the poller for more."""
        try:
            data = conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            data = None
        except OSError:
            self._close(conn)
            return
        if data == b"":  # the client went away
            self._close(conn)
            return
        if data:
            conn.arrived += data
        state = arrival(conn.arrived)
        if state == PARTIAL:
            if data and EXPECT_CONTINUE.search(bytes(conn.arrived[:MAX_HEAD_BYTES]).lower()):
                self._continue(conn)
            if not conn.waiting:
                conn.waiting = True
                self.arriving.append(conn)
                self.poller.register(
                    conn.sock, selectors.EVENT_READ, partial(self._read_arriving, conn)
                )
            return
        if state != WHOLE:
            self._refuse(conn, state)
            return
        self._stop_waiting(conn)
        conn.sock.setblocking(True)
        conn.init()
        conn.parser.unreader.unread(bytes(conn.arrived))
        conn.arrived = None
        conn.data_ready = True  # gthread must not wait for bytes already read
        conn.whole = True
        self.enqueue_req(conn)

    def _stop_waiting(self, conn: Any) -> None:
        if conn.waiting:
            conn.waiting = False
            self.arriving.remove(conn)
            self.poller.unregister(conn.sock)

    def _continue(self, conn: Any) -> None:
        """The client waits for `100 Continue` before it sends the body (RFC 9110 §10.1.1);
        said once, when the head is whole and the body has not come."""
        body = head_end(conn.arrived)
        if getattr(conn, "continued", False) or body < 0 or len(conn.arrived) > body:
            return
        if not HTTP_11.match(conn.arrived):
            return
        conn.continued = True
        with contextlib.suppress(OSError):
            conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _refuse(self, conn: Any, status: int) -> None:
        reason, message = REFUSALS[status]
        with contextlib.suppress(OSError):  # the client may be gone already
            conn.sock.send(json_refusal(status, reason, message))
        self._close(conn)

    def _close(self, conn: Any) -> None:
        self._stop_waiting(conn)
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        while self.arriving and self.arriving[0].arrival_deadline <= now:
            conn = self.arriving[0]
            if conn.arrived:
                self._refuse(conn, 408)
            else:  # nothing came: an idle connection, closed as gthread closes those
                self._close(conn)

    # --- a busy keep-alive connection stays on its thread --------------------------

    def handle(self, conn: Any) -> Any:
        result = super().handle(conn)
        served = 1
        while result is True and served < MAX_IN_A_ROW and self._next_request_soon(conn):
            result = super().handle(conn)
            served += 1
        return result

    def _next_request_soon(self, conn: Any) -> bool:
        """Whether to serve the connection's next request on this thread: it is whole."""
        if not self.alive or getattr(conn, "is_http2", False):
            return False
        if conn.parser is None or conn.parser.unreader.buf.getvalue():
            # Bytes read ahead: the main thread sees whether they are a whole request.
            return False
        work_queue = getattr(self.tpool, "_work_queue", None)
        if work_queue is not None and not work_queue.empty():
            return False  # other connections wait for a thread: give this one back
        deadline = time.monotonic() + LINGER_SECONDS
        poller = select.poll()
        poller.register(conn.sock, select.POLLIN | select.POLLPRI)
        try:
            if not poller.poll(LINGER_SECONDS * 1000):
                return False
            if not self.reads_ahead:
                return True
            while True:
                # A client may send the head and the body in two writes: the body is
                # waited for, within the same linger.
                peeked = conn.sock.recv(RECV_BYTES, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                state = arrival(peeked) if peeked else WHOLE  # closed: gthread's path
                if state != PARTIAL or time.monotonic() >= deadline:
                    return state == WHOLE
                time.sleep(LINGER_SECONDS / 20)
        except OSError:
            return False

    # --- refusals as JSON ------------------------------------------------------------

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """gunicorn's refusal (its status, its logging, its access line), as JSON."""
        captured = _Captured()
        super().handle_error(req, captured, addr, exc)
        status_line = captured.data.split(b"\r\n", 1)[0].split(None, 2)
        try:
            status = int(status_line[1])
        except (IndexError, ValueError):
            status = 500
        reason, message = REFUSALS.get(status, REFUSALS[500])
        try:
            util.write_nonblock(client, json_refusal(status, reason, message))
        except OSError:
            self.log.debug("Failed to send error message.")
