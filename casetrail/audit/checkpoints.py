"""The periodic job: sign a checkpoint of the log when it has grown.

`casetrail cron` calls `write_checkpoint(ct)`; `casetrail audit checkpoint` writes one on
demand (with `force=True`, also when nothing was appended since the last one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from casetrail.audit import audit_of
from casetrail.audit.records import CheckpointRow

if TYPE_CHECKING:
    from casetrail.bootstrap import Casetrail


def write_checkpoint(ct: Casetrail, *, force: bool = False) -> CheckpointRow | None:
    """Signs and stores a checkpoint if the log grew (or `force`); returns it, else None."""
    return audit_of(ct).write_checkpoint(force=force)


# How often `casetrail cron` signs a checkpoint of a grown log: the window in which new
# events are protected by their chain alone.
CHECKPOINT_INTERVAL_SECONDS = 300


def checkpoint_job() -> int | None:
    """The cron job (run by an RQ worker): a checkpoint with the worker's casetrail if the
    log grew; its number, or None."""
    from workers.jobs import current

    row = write_checkpoint(current())
    return None if row is None else int(row.number)
