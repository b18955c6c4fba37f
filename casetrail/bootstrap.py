"""The one composition root: configuration in, a wired casetrail out.

`web`, `workers`, the CLI and the tests all build casetrail here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from casetrail.application import CaseApplication
from casetrail.config import Settings
from casetrail.db import Database
from casetrail.directory import Directory
from casetrail.service import AppendListener, CaseService
from domain.clock import Clock, SystemClock

log = logging.getLogger("casetrail")


@dataclass
class Casetrail:
    settings: Settings
    clock: Clock
    app: CaseApplication
    db: Database
    directory: Directory
    service: CaseService
    extras: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        # A throttled projection signal still scheduled is sent now.
        close_signal = getattr(self.service.on_append, "close", None)
        if callable(close_signal):
            close_signal()
        self.app.close()


def bootstrap(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    on_append: AppendListener | None = None,
    seed_units: bool = True,
    signal_workers: bool = False,
) -> Casetrail:
    """With `signal_workers` (web and worker processes), each accepted append wakes the
    projection workers through Redis, unless `on_append` is given."""
    settings = settings or Settings.from_env()
    if on_append is None and signal_workers:
        from workers.signals import ProjectionSignal

        on_append = ProjectionSignal(settings)
    clock = clock or SystemClock()
    if settings.backend == "sqlite":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = CaseApplication(env=settings.eventsourcing_env())
    factory: Any = app.factory
    factory.check_durability()
    db: Database = factory.database()
    directory = Directory(db)
    directory.create_tables()
    if seed_units:
        directory.seed_jiangsu()
    service = CaseService(app, db, directory, clock, on_append=on_append)
    log.info("casetrail on %s", settings.backend)
    ct = Casetrail(settings, clock, app, db, directory, service)
    # The audit trail: checkpoint table, signing key, the read-access hook on the service.
    from casetrail.audit import install as install_audit

    install_audit(ct)
    return ct
