"""The deadline sweeps' fault campaign, short (issue 16; the full one is
`python -m bench.deadline_faults`): 3 cron and 2 worker processes, kill -9 of six of them
and Redis stopped for 5 s while new disputes keep coming; then every warning and breach is
recorded exactly once (brute force from the event streams) and delivered to the webhook
receiver under one delivery id, without personal data."""

from __future__ import annotations

from bench.deadline_faults import arguments, campaign
from casetrail.config import Settings


def test_sweeps_and_deliveries_survive_kills_and_a_redis_outage(settings: Settings) -> None:
    result = campaign(settings, arguments(["--short"]))
    assert result["problems"] == []
    records = result["records"]
    assert records["DeadlineWarned"] > 0 and records["DeadlineBreached"] > 0
    assert result["deliveries"] == records["DeadlineWarned"] + records["DeadlineBreached"]
    assert result["cases"] > 400  # new disputes came in during the faults
    assert result["refused_503"] > 0  # the receiver's refusals were retried
