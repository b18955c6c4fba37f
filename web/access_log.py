"""gunicorn's access log, one `os.write` a request.

gunicorn's own `Logger.access` builds a dictionary of every request header, response
header and environ variable for each request, then formats it through `logging` (a
handler lock and a flush): about 0.06 server CPU ms an append at four clients
(docs/append-path.md). This logger writes the same line, with the fields casetrail logs
and no others, straight to the access log's file descriptor:

    2026-12-04T17:51:18.123+00:00 INFO [4242] gunicorn.access: 127.0.0.1 "POST /api/v1/cases/<id>/events" 201 625 3ms

in the one log format of every process (workers/logs.py; a JSON object with
`CASETRAIL_LOG_FORMAT=json`): address, method, path (never the query string: a search term may be a person's name),
status, bytes sent and milliseconds. A line is written whole by one `write` (appended,
under `PIPE_BUF`). When the access log is not a plain stream (syslog, a logging
configuration), the same line goes through `logging`; the error log is gunicorn's.
"""

from __future__ import annotations

import logging
import os
import re
import time
from datetime import timedelta
from typing import Any

from gunicorn import glogging

from workers.logs import line as log_line


class AccessLogger(glogging.Logger):  # type: ignore[misc]
    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not self.access_log_enabled:
            return
        line = access_line(resp, environ, request_time)
        fd = self._access_fd()
        if fd is None:  # not a plain stream (syslog, a logging configuration): the same
            self.access_log.info("%s", line.rstrip("\n"))  # line, through `logging`
            return
        record = log_line(time.time(), "INFO", "gunicorn.access", line.rstrip("\n")) + "\n"
        try:
            os.write(fd, record.encode("utf-8", "replace"))
        except Exception:  # a full disk or a closed stream must not fail the request
            self.error("could not write the access log", exc_info=True)

    def _access_fd(self) -> int | None:
        handlers = self.access_log.handlers
        if len(handlers) != 1 or not isinstance(handlers[0], logging.StreamHandler):
            return None
        stream = handlers[0].stream
        try:
            return int(stream.fileno())
        except (AttributeError, OSError, ValueError):
            return None


# C0 and C1 controls, DEL, and the quote and backslash that delimit and escape a field:
# a path decoded from `%0A` must not end the line and forge another (issue 14).
UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f"\\]')


def escaped(field: str) -> str:
    return UNSAFE.sub(lambda match: f"\\x{ord(match.group()):02x}", field)


def access_line(resp: Any, environ: dict[str, Any], request_time: timedelta) -> str:
    status = resp.status if resp is not None else "-"
    if isinstance(status, str):
        status = status.split(None, 1)[0]
    sent = getattr(resp, "sent", None)
    ms = request_time.seconds * 1000 + request_time.microseconds // 1000
    return (
        f'{environ.get("REMOTE_ADDR", "-")} "{escaped(environ.get("REQUEST_METHOD", "-"))} '
        f'{escaped(environ.get("PATH_INFO", "-"))}" {status} {"-" if sent is None else sent} '
        f"{ms}ms\n"
    )
