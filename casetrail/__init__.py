"""casetrail's application layer: configuration, the stores, the one application service, the audit trail."""
