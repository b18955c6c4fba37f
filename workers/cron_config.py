"""For `rq cron workers.cron_config`: the schedule of `casetrail cron`, from the environment."""

from __future__ import annotations

from rq import cron

from casetrail.config import Settings
from workers.cron import register

register(cron.register, Settings.from_env())
