"""The web process's access log (web/access_log.py): one line a request, the fields
casetrail logs and no query string."""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import pytest
import requests
from gunicorn.config import Config

from casetrail.config import Settings
from tests.web.conftest import Service, Tokens
from web.access_log import AccessLogger

NAME = "王建国"
# A search by a person's name, as gunicorn's environ has it.
SEARCH = {
    "REMOTE_ADDR": "10.0.0.7",
    "REQUEST_METHOD": "GET",
    "PATH_INFO": "/api/v1/cases",
    "QUERY_STRING": f"q={quote(NAME)}",
    "RAW_URI": f"/api/v1/cases?q={quote(NAME)}",
    "HTTP_AUTHORIZATION": "Bearer ct_secret",
}


def logger_writing_to(path: Path) -> AccessLogger:
    cfg = Config()
    cfg.set("accesslog", str(path))
    return AccessLogger(cfg)


def test_a_request_is_one_line_with_address_method_path_status_bytes_and_milliseconds(
    tmp_path: Path,
) -> None:
    path = tmp_path / "access.log"
    logger = logger_writing_to(path)
    response = SimpleNamespace(status="200 OK", sent=1234, headers=[])
    logger.access(response, SimpleNamespace(headers=[]), SEARCH, timedelta(milliseconds=12.7))
    # A response that sent nothing, after a request that never got an environ.
    empty = SimpleNamespace(status="400 BAD REQUEST", sent=None, headers=[])
    logger.access(empty, SimpleNamespace(headers=[]), {}, timedelta(seconds=1, microseconds=5))
    # In the one log format (workers.logs): time, level, process, logger, then the line.
    messages = [line.split(" gunicorn.access: ", 1) for line in path.read_text().splitlines()]
    assert [message for _, message in messages] == [
        '10.0.0.7 "GET /api/v1/cases" 200 1234 12ms',
        '- "- -" 400 - 1000ms',
    ]
    assert all(prefix.endswith(f" INFO [{os.getpid()}]") for prefix, _ in messages)


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_an_access_log_that_is_not_a_stream_gets_the_same_line_through_logging(
    tmp_path: Path,
) -> None:
    # E.g. syslog or a logging configuration: no file descriptor to write to, and not
    # gunicorn's own format either (its default has the query string).
    logger = logger_writing_to(tmp_path / "access.log")
    captured = Captured()
    logger.access_log.handlers = [captured]
    response = SimpleNamespace(status="200 OK", sent=10, headers=[])
    logger.access(response, SimpleNamespace(headers=[]), SEARCH, timedelta(milliseconds=3))
    assert captured.lines == ['10.0.0.7 "GET /api/v1/cases" 200 10 3ms']


def test_no_access_log_when_it_is_off(tmp_path: Path) -> None:
    cfg = Config()
    cfg.set("accesslog", None)
    logger = AccessLogger(cfg)
    response = SimpleNamespace(status="200 OK", sent=1, headers=[])
    logger.access(response, SimpleNamespace(headers=[]), {}, timedelta(0))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_web_process_logs_every_request_without_query_strings(
    settings: Settings, tokens: Tokens, tmp_path: Path
) -> None:
    log = tmp_path / "gunicorn.log"
    service = Service(settings, log)
    service.env["CASETRAIL_ACCESS_LOG"] = "-"  # on, to standard output (the Procfile's)
    service.start()
    try:
        headers = tokens.headers("supervisor")
        assert requests.get(f"{service.url}/cases", params={"q": NAME}, headers=headers).ok
        assert requests.get(f"{service.url}/no-such-address", headers=headers).status_code == 404
        # A path that decodes to a line break and a line of its own (issue 14).
        forged = "/x%0A10.6.6.6%20%22GET%20/forged%22%20200%201%201ms%0D%09%1B%5B31m%22%5C"
        assert requests.get(f"{service.url}{forged}", headers=headers).status_code == 404
    finally:
        service.stop()
    lines = log.read_text(encoding="utf-8").splitlines()
    assert any(' gunicorn.access: 127.0.0.1 "GET /api/v1/cases" 200 ' in line for line in lines)
    assert any('"GET /api/v1/no-such-address" 404 ' in line for line in lines), lines
    assert not any(line.startswith("10.6.6.6") for line in lines), lines
    assert not any(" gunicorn.access: 10.6.6.6" in line for line in lines), lines
    assert any(
        '"GET /api/v1/x\\x0a10.6.6.6 \\x22GET /forged\\x22 200 1 1ms\\x0d\\x09\\x1b[31m\\x22\\x5c" 404 '
        in line
        for line in lines
    ), lines
    text = log.read_text(encoding="utf-8")
    assert NAME not in text and quote(NAME) not in text and "q=" not in text
