"""`casetrail cron`: RQ's cron scheduler (RQ 3) enqueueing the projection safety net.

The same schedule can be run by RQ's own command: `rq cron workers.cron_config -u URL`.
"""

from __future__ import annotations

from rq.cron import CronScheduler

from casetrail.config import Settings
from workers.deadlines import SWEEP_TIMEOUT_SECONDS, sweep_interval, sweep_job
from workers.jobs import checkpoint_job, safety_net
from workers.redis_conn import connect

SAFETY_NET_TIMEOUT_SECONDS = 600
# How often a grown audit log is signed: the window in which new events are protected by
# their chain alone.
CHECKPOINT_INTERVAL_SECONDS = 300


def scheduler(settings: Settings) -> CronScheduler:
    cron = CronScheduler(connection=connect(settings), name=f"{settings.queue_name}-cron")
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
    # Deadline warnings and breaches, each recorded once (casetrail.deadlines).
    register_job(
        sweep_job,
        settings.queue_name,
        interval=sweep_interval(),
        job_timeout=SWEEP_TIMEOUT_SECONDS,
        result_ttl=60,
        name=f"{settings.queue_name}:deadline-sweep",
    )
