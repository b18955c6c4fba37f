"""The roles of casetrail's users, and which roles may do what (one place for them all)."""

from __future__ import annotations

CASEWORKER = "caseworker"
SUPERVISOR = "supervisor"
AUDITOR = "auditor"
ADMIN = "admin"

ROLES = (CASEWORKER, SUPERVISOR, AUDITOR, ADMIN)
# Who records case events (a supervisor alone records some, e.g. a deadline extension).
WRITING_ROLES = (CASEWORKER, SUPERVISOR)
# Who reads cases: their own unit's subtree, an auditor anywhere.
READ_ROLES = (CASEWORKER, SUPERVISOR, AUDITOR)
# Who queries the read models (case lists, indicators): the same reach as reading.
QUERY_ROLES = READ_ROLES
# Who sees how far the read models have got.
OPERATIONS_ROLES = (SUPERVISOR, AUDITOR, ADMIN)
