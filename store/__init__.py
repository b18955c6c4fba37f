"""The event store: `eventsourcing` recorders for SQLite and PostgreSQL that also write,
in the same transaction as the events, each event's hash-chain link and the
idempotency key of the command that appended it.
"""
