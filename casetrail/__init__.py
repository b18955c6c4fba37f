"""casetrail's application layer: configuration, stores, the one application service, the CLI."""
