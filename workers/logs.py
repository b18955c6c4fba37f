"""One log format for web, worker and cron: timestamp, level, process, logger, message.

    2026-12-04T17:51:18.123+00:00 INFO [4242] casetrail.workers: catch-up applied 3 events

`CASETRAIL_LOG_FORMAT=json` writes one JSON object a line instead (`ts`, `level`, `logger`,
`process`, `message`; `exc` with a traceback). `CASETRAIL_LOG_LEVEL` (default info) sets
the level. The CLI calls `configure()`; gunicorn takes `logging_config()` as its
`logconfig_dict`. Messages carry ids and counts only, never personal data.

An idle service is quiet: RQ's worker and scheduler log at WARNING (a job that fails still
says so), the safety net only when it applied something.
"""

from __future__ import annotations

import json
import logging
import logging.config
import math
import os
import time
from typing import Any

# Loggers that talk at INFO about every job or every tick of an idle service.
CHATTY = ("rq.worker", "rq.queue", "rq.scheduler", "rq.cron", "rq.cron_scheduler", "rq.job")


def json_lines() -> bool:
    return os.environ.get("CASETRAIL_LOG_FORMAT", "").strip().lower() == "json"


def level() -> str:
    return (os.environ.get("CASETRAIL_LOG_LEVEL") or "info").strip().upper()


def timestamp(created: float) -> str:
    """ISO 8601 local time with milliseconds and offset (cheaper than `datetime`'s: the
    access log writes one a request, so the part up to the second is kept a second)."""
    global _kept
    second = math.floor(created)
    micro = round((created - second) * 1_000_000)  # as `datetime` rounds it
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    kept_second, prefix, suffix = _kept
    if second != kept_second:
        local = time.localtime(second)
        offset = local.tm_gmtoff
        sign = "+" if offset >= 0 else "-"
        hours, minutes = divmod(abs(offset) // 60, 60)
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", local)
        suffix = f"{sign}{hours:02d}:{minutes:02d}"
        _kept = (second, prefix, suffix)  # one tuple: threads see all of it or none
    return f"{prefix}.{micro // 1000:03d}{suffix}"


_kept: tuple[int, str, str] = (-1, "", "")


def line(created: float, levelname: str, logger: str, message: str, exc: str = "") -> str:
    """One record as a line (without its newline), in the configured format."""
    ts = timestamp(created)
    if json_lines():
        record: dict[str, Any] = {
            "ts": ts,
            "level": levelname,
            "logger": logger,
            "process": os.getpid(),
            "message": message,
        }
        if exc:
            record["exc"] = exc
        return json.dumps(record, ensure_ascii=False)
    text = f"{ts} {levelname} [{os.getpid()}] {logger}: {message}"
    return f"{text}\n{exc}" if exc else text


class Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        exc = self.formatException(record.exc_info) if record.exc_info else ""
        return line(record.created, record.levelname, record.name, record.getMessage(), exc)


def logging_config(access_log: str | None = None) -> dict[str, Any]:
    """The `logging.config.dictConfig` of every process (gunicorn's `logconfig_dict`);
    `access_log`: gunicorn's access log, "-" for stdout, a path, or None for none."""
    handlers: dict[str, Any] = {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "casetrail",
            "stream": "ext://sys.stderr",
        },
    }
    if access_log == "-":
        handlers["access"] = {
            "class": "logging.StreamHandler",
            "formatter": "casetrail",
            "stream": "ext://sys.stdout",
        }
    elif access_log:
        handlers["access"] = {
            "class": "logging.FileHandler",
            "formatter": "casetrail",
            "filename": access_log,
        }
    loggers: dict[str, Any] = {
        "gunicorn.error": {"level": level(), "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {
            "level": "INFO",
            "handlers": ["access"] if access_log else [],
            "propagate": False,
        },
    }
    for name in CHATTY:
        loggers[name] = {"level": "WARNING"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"casetrail": {"()": Formatter}},
        "handlers": handlers,
        "root": {"level": level(), "handlers": ["stderr"]},
        "loggers": loggers,
    }


def configure() -> None:
    """This process's logging (the CLI's commands: worker, cron, up)."""
    logging.config.dictConfig(logging_config())
