"""The tamper-evident audit trail: hash-chained cases, a signed RFC 6962 Merkle log,
offline verification of exported cases, and the read-access log.

The verifier (the security boundary) is the `evidence` package: pure modules that read
nothing themselves. Here, `records` reads the rows, `trail` signs and proves, `access`
records reads, `keys` holds the signing key.
`casetrail.bootstrap` builds the trail (`Casetrail.audit`).
"""
