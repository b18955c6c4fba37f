"""What an append writes beside its events, in their transaction, on either store: each
event's hash-chain link, the command's idempotency key, the read-access index rows. One
place, so that both recorders write (and create) the same tables."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent

from store import access_index, chain_links, idempotency
from store.chain_links import ChainLink
from store.db import Cursor


def create_statements() -> list[str]:
    return [
        *chain_links.create_statements(),
        *idempotency.create_statements(),
        *access_index.create_statements(),
    ]


def write_beside_events(
    cur: Cursor,
    stored_events: Sequence[StoredEvent],
    positions: Sequence[int],
    *,
    also: Callable[[Cursor], None] | None = None,
    **kwargs: Any,
) -> list[ChainLink]:
    """Writes the rows of these just-inserted events (at these positions); the chain links
    written, in order. `also` writes what must stand or fall with the events (an erasure's
    keys destroyed with its act), in their transaction."""
    links = chain_links.write_links(cur, stored_events, positions, **kwargs)
    idempotency.record_key(cur, stored_events, positions, **kwargs)
    access_index.write_rows(cur, stored_events, positions, **kwargs)
    if also is not None:
        also(cur)
    return links
