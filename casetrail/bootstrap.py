"""The one composition root: configuration in, a wired casetrail out.

`web`, `workers`, the CLI and the tests all build casetrail here. What casetrail cannot
know (how the projection workers are woken) they hand in: `on_append`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from casetrail.administration import AdministrationLog
from casetrail.application import CaseApplication
from casetrail.audit.keys import load_signer
from casetrail.audit.records import create_tables as create_audit_tables
from casetrail.audit.trail import AuditTrail
from casetrail.audit.witnesses import create_tables as create_witness_tables
from casetrail.config import Settings
from casetrail.directory import Directory
from casetrail.events import AppendListener
from casetrail.files import private_dir, private_sqlite
from casetrail.idempotency import IdempotencyKeys
from casetrail.personal import PersonKeys, load_master_key
from casetrail.reads import StreamReads
from casetrail.registers import Registers
from casetrail.service import CaseService
from domain.clock import Clock, SystemClock
from store.db import Database

log = logging.getLogger("casetrail")


class ReadModelEngine(Protocol):
    """What the application knows of the read models' engine (projections.engine.Engine)."""

    def status(self) -> list[dict[str, Any]]: ...


@dataclass(eq=False)
class Casetrail:
    settings: Settings
    clock: Clock
    app: CaseApplication
    db: Database
    directory: Directory
    audit: AuditTrail
    service: CaseService  # the commands
    reads: StreamReads  # the event streams, for auditors and a case's own staff
    registers: Registers  # committees, mediators, bases, correction staff
    # The read models' engine, built on first use by the layer above (projections.engine_for).
    read_models: ReadModelEngine | None = None

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
) -> Casetrail:
    """`on_append` is called with the position of each accepted append (web and worker
    processes hand in `workers.signals.ProjectionSignal`, which wakes the projection
    workers)."""
    settings = settings or Settings.from_env()
    clock = clock or SystemClock()
    private_dir(settings.data_dir)  # the master key's file is there on either backend
    app = CaseApplication(env=settings.eventsourcing_env())
    try:
        return _wire(settings, clock, app, on_append, seed_units=seed_units)
    except BaseException:
        # A store that went away half-way (PostgreSQL cut off): no pool left behind,
        # reconnecting in the background, in a process that tries again later.
        app.close()
        raise


def _wire(
    settings: Settings,
    clock: Clock,
    app: CaseApplication,
    on_append: AppendListener | None,
    *,
    seed_units: bool,
) -> Casetrail:
    factory: Any = app.factory
    factory.check_durability()
    if settings.backend == "sqlite":
        private_sqlite(settings.sqlite_path)
    db: Database = factory.database()
    keys = PersonKeys(db, load_master_key(settings.master_key, settings.data_dir))
    if not keys.attach(app) and not settings.cipher_key:
        # Said at every start, in words and without data: the operator must know.
        log.warning(
            "This store has no per-person keys and CASETRAIL_CIPHER_KEY is not set: the "
            "events' personal data (names, ID numbers, addresses) are stored unencrypted; "
            "migrate it (docs/privacy.md) before holding real cases"
        )
    directory = Directory(
        db,
        log=AdministrationLog(app, db, clock, on_append),
        token_ttl_days=settings.token_ttl_days,
    )
    directory.create_tables()
    if seed_units:
        directory.seed_jiangsu()
    # The audit trail: its checkpoint table, its signing key, the read-access log.
    create_audit_tables(db)
    create_witness_tables(db)
    audit = AuditTrail(app, db, clock, load_signer(settings.signing_key, settings.data_dir))
    registers = Registers(db, directory)
    registers.create_tables()
    service = CaseService(
        app,
        directory,
        clock,
        IdempotencyKeys(app, db),
        registers,
        on_append=on_append,
        seal_opening=timedelta(hours=settings.seal_opening_hours),
    )
    reads = StreamReads(app, db, directory, clock, audit.access)
    log.info("casetrail on %s", settings.backend)
    return Casetrail(settings, clock, app, db, directory, audit, service, reads, registers)
