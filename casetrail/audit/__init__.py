"""The tamper-evident audit trail: hash-chained cases, a signed RFC 6962 Merkle log,
offline verification of exported cases, and the read-access log.

The verifier (the security boundary) is `merkle`, `note`, `verifier` and `offline`: pure
modules that read nothing themselves. `records` reads the rows, `trail` signs and proves.
`casetrail.bootstrap` builds the trail (`Casetrail.audit`).
"""
