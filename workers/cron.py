"""`casetrail cron`: RQ's cron scheduler (RQ 3) enqueueing the projection safety net.

The same schedule can be run by RQ's own command: `rq cron workers.cron_config -u URL`.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from rq.cron import CronScheduler
from rq.exceptions import SchedulerNotFound

from casetrail.config import Settings
from workers.deadlines import (
    FULL_SWEEP_INTERVAL_SECONDS,
    SWEEP_TIMEOUT_SECONDS,
    full_sweep_job,
    sweep_interval,
    sweep_job,
)
from workers.jobs import checkpoint_job, retention_job, safety_net
from workers.notify import NOTIFY_TIMEOUT_SECONDS, notify_interval, notify_job
from workers.redis_conn import connect
from workers.resilience import ride_out

SAFETY_NET_TIMEOUT_SECONDS = 600
# How often a grown audit log is signed: the window in which new events are protected by
# their chain alone.
CHECKPOINT_INTERVAL_SECONDS = 300
# Retention periods are counted in days: once a day is enough (and at each cron start).
RETENTION_INTERVAL_SECONDS = 24 * 3600
RETENTION_TIMEOUT_SECONDS = 3600


def run(settings: Settings) -> None:
    """`casetrail cron`: the scheduler, started again whenever it ends on a lost Redis
    (a fresh start queues the safety net at once: whatever was missed is caught up)."""

    def session() -> bool:
        cron = scheduler(settings)
        # A Redis restarted empty has forgotten this scheduler: its leaving cannot be noted.
        with contextlib.suppress(SchedulerNotFound):
            cron.start()
        return cron.stop_requested

    ride_out(session, what="cron")


class Scheduler(CronScheduler):
    """RQ's cron scheduler, remembering whether it was asked to stop (or lost Redis)."""

    stop_requested = False

    def _request_stop(self, signum: Any, frame: Any) -> None:
        self.stop_requested = True
        super()._request_stop(signum, frame)


def scheduler(settings: Settings) -> Scheduler:
    cron = Scheduler(
        connection=connect(settings),
        name=f"{settings.queue_name}-cron",
        logging_level=logging.WARNING,  # not a line for every job it queues (workers.logs)
    )
    register(cron.register, settings)
    return cron


def register(register_job: object, settings: Settings) -> None:
    """Registers the safety net with `CronScheduler.register` or `rq.cron.register`."""
    assert callable(register_job)
    register_job(
        safety_net,
        settings.queue_name,
        interval=settings.catch_up_interval,
        job_timeout=SAFETY_NET_TIMEOUT_SECONDS,
        result_ttl=60,
        name=f"{settings.queue_name}:projections-safety-net",
    )
    # The audit log's signed checkpoint, when the log has grown (casetrail.audit).
    register_job(
        checkpoint_job,
        settings.queue_name,
        interval=CHECKPOINT_INTERVAL_SECONDS,
        job_timeout=SAFETY_NET_TIMEOUT_SECONDS,
        result_ttl=60,
        name=f"{settings.queue_name}:audit-checkpoint",
    )
    # Deadline warnings and breaches, each recorded once (workers.sweeps).
    register_job(
        sweep_job,
        settings.queue_name,
        interval=sweep_interval(),
        job_timeout=SWEEP_TIMEOUT_SECONDS,
        result_ttl=60,
        name=f"{settings.queue_name}:deadline-sweep",
    )
    register_job(
        full_sweep_job,
        settings.queue_name,
        interval=FULL_SWEEP_INTERVAL_SECONDS,
        job_timeout=SWEEP_TIMEOUT_SECONDS,
        result_ttl=60,
        name=f"{settings.queue_name}:deadline-full-sweep",
    )
    # Webhook notifications of the recorded warnings and breaches (workers.notify).
    register_job(
        notify_job,
        settings.queue_name,
        interval=notify_interval(),
        job_timeout=NOTIFY_TIMEOUT_SECONDS,
        result_ttl=60,
        name=f"{settings.queue_name}:deadline-notify",
    )
    # What has passed its retention period, erased (projections.retention).
    register_job(
        retention_job,
        settings.queue_name,
        interval=RETENTION_INTERVAL_SECONDS,
        job_timeout=RETENTION_TIMEOUT_SECONDS,
        result_ttl=3600,
        name=f"{settings.queue_name}:retention",
    )
