"""The tamper-evident audit trail: hash-chained cases, a signed RFC 6962 Merkle log,
offline verification of exported cases, and the read-access log.

The verifier (the security boundary) is `merkle`, `note`, `verifier` and `offline`: pure
modules that read nothing themselves. `records` reads the rows, `trail` signs and proves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from casetrail.audit.keys import load_signer
from casetrail.audit.records import create_tables
from casetrail.audit.trail import AuditTrail

if TYPE_CHECKING:
    from casetrail.bootstrap import Casetrail

EXTRA = "audit"


def install(ct: Casetrail) -> AuditTrail:
    """Wires the audit trail into a built casetrail: its table, its key, the read hook."""
    create_tables(ct.db)
    signer = load_signer(ct.settings.signing_key, ct.settings.data_dir)
    trail = AuditTrail(ct.app, ct.db, ct.clock, signer)
    ct.extras[EXTRA] = trail
    ct.service.on_read = trail.record_read
    ct.service.access = trail.access
    return trail


def audit_of(ct: Casetrail) -> AuditTrail:
    trail = ct.extras.get(EXTRA)
    if not isinstance(trail, AuditTrail):
        trail = install(ct)
    return trail
