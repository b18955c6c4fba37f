"""Tracking records of read models: one per generation (`rm:<name>:<gen>`), and one per
share of cases while several processes fill a generation (`rm:<name>:<gen>:<lo>-<hi>`).

Each lives in the `eventsourcing` tracking table of the read models' datastore; a batch
claims its record with a compare-and-set before it writes (see projections.engine).
"""

from __future__ import annotations

from typing import Any


class Conflict(Exception):
    """Another worker advanced the projection since this batch was read."""


# A partitionable read model's rebuild may be split by case into shares of these buckets.
SHARE_BUCKETS = 1000


def tracking_name(name: str, generation: int) -> str:
    return f"rm:{name}:{generation}"


def share_tracking_name(name: str, generation: int, share: tuple[int, int]) -> str:
    """The tracking record of the cases of buckets [lo, hi) of a building generation."""
    return f"{tracking_name(name, generation)}:{share[0]}-{share[1]}"


def share_names(name: str, generation: int) -> tuple[str, str]:
    """Bounds (exclusive) of the tracking names of a generation's shares."""
    prefix = tracking_name(name, generation) + ":"
    return prefix, prefix[:-1] + ";"  # ';' sorts right after ':'


def share_label(share: tuple[str, tuple[int, int]]) -> str:
    name, (lo, hi) = share
    return f"{name}[{lo}:{hi}]"


def bucket(case_id: Any) -> int:
    """A case's bucket (0 to SHARE_BUCKETS - 1), from its UUID."""
    return int(case_id.int % SHARE_BUCKETS)
