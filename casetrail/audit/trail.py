"""The audit trail of a running casetrail: verification, signed checkpoints, proofs,
case exports and the read-access log, over the event store's own database.

The checks themselves live in the pure modules (`verifier`, `offline`, `merkle`, `note`);
this module reads rows, builds proofs and signs.
"""

from __future__ import annotations

import base64
import getpass
import itertools
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from cryptography.x509 import Certificate

from casetrail.application import CaseApplication
from casetrail.audit import records, stream, witnesses
from casetrail.audit.access import ReadAccessLog
from casetrail.audit.keys import Signer
from domain.case import Actor
from domain.clock import Clock
from domain.errors import CaseNotFound, CasetrailError
from domain.roles import AUDITOR
from evidence.case_verifier import verify_case
from evidence.note import Checkpoint, NoteError, open_checkpoint
from evidence.offline import EXPORT_FORMAT, canonical_export
from evidence.stream import Partial, check_cases, combine, range_sizes
from evidence.timestamp import check_timestamps
from evidence.tree import BLOCK
from evidence.verifier import (
    Decoded,
    LinkRow,
    Report,
    StoredRow,
    open_checkpoints,
    type_of_topic,
)
from evidence.witness import WitnessKey, check_quorum
from store import log_tree
from store.db import Database
from store.log_tree import StoredTree, TreeIncomplete

log = logging.getLogger("casetrail.audit")
_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]

# Chain rows after the kept tree a one-case verification reads at most; beyond, the tree
# is not kept up to the latest checkpoint (a store from before it, until the next
# checkpoint) and the log is read instead.
TAIL_LIMIT = 4 * BLOCK

# Checkpoints whose cosignatures or timestamps are read together.
VOUCHED_CHUNK = 5_000

# Checks ranges of the log (bounds, checkpoint sizes, case, progress) and gives their
# results in order; `AuditTrail.check_range` of each, here or in other processes.
RangeRunner = Callable[[Sequence[stream.Bounds], Sequence[int], Any, Any], Iterable[Partial]]


def _operator() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in this environment (e.g. a container)
        return "unknown"


# Who exports from the command line: the operating-system user, as an auditor.
CLI_AUDITOR = Actor(user_id="cli:" + _operator(), role=AUDITOR, unit="")


class LogInconsistent(CasetrailError):
    """The log no longer matches its last checkpoint: nothing more is signed (409)."""

    status = 409
    code = "log_inconsistent"


class AuditTrail:
    def __init__(self, app: CaseApplication, db: Database, clock: Clock, signer: Signer) -> None:
        self.app = app
        self.db = db
        self.clock = clock
        self.signer = signer
        self.access = ReadAccessLog(app, db, clock)
        # `stored_events` on SQLite, `<application>_events` on PostgreSQL.
        self.events_table: str = app.recorder.events_table_name  # type: ignore[attr-defined]

    @property
    def public_key(self) -> str:
        """The log's verifier key in the C2SP note form."""
        return self.signer.verifier.encode()

    # --- verification -----------------------------------------------------------------

    def verify(
        self,
        case: str | None = None,
        trusted: Sequence[str] = (),
        *,
        ranges: RangeRunner | None = None,
        progress: stream.Progress | None = None,
    ) -> Report:
        """Recomputes every chain (or one case's) and the log against every checkpoint.

        The store is read in chunks, range by range (`ranges` may check them in other
        processes: it maps `check_range` over them), holding one chunk at a time. One
        case is checked from its own rows and proofs in the kept tree, unless that tree
        does not reach the latest checkpoint."""
        if case is not None:
            case = _case_id(case)
            proved = self._verify_case(case, trusted)
            if proved is not None:
                return proved
            events, links = stream.case_rows(self.db, self.events_table, case)
            if not events and not links:
                raise CaseNotFound(f"There is no case {case}.")
        # The checkpoints first (by number, a chunk at a time), then the log they sign.
        report = Report()
        checkpoints = records.iter_checkpoints(self.db)
        opened = open_checkpoints(report, checkpoints, self.signer.verifier, trusted)
        sizes = opened.distinct_sizes()
        count = stream.count_events(self.db, self.events_table)
        bounds = stream.plan(self.db, self.events_table, count, range_sizes(count, 8))
        partials = list((ranges or self._ranges)(bounds, sizes, case, progress))
        del sizes
        report = combine(partials, opened, report)
        irregular = set().union(*(p.irregular for p in partials))
        irregular |= stream.duplicated(self.db, self.events_table)
        check_cases(
            report,
            sorted(irregular if case is None else irregular & {case}),
            lambda c: stream.case_rows(self.db, self.events_table, c),
        )
        self.check_snapshots(report, case)
        if case is None:
            latest = report.checkpoint.size if report.checkpoint is not None else 0
            report.after_checkpoint = max(report.log_size - latest, 0)
        for position in self.access.index_mismatches() if case is None else []:
            report.add(
                "access_index_altered",
                f"The read-access index at position {position} is not what its record "
                "names: the index was altered.",
                position=position,
            )
        return report

    def _verify_case(self, case: str, trusted: Sequence[str]) -> Report | None:
        """One case from its own rows, its events proved in the latest checkpoint (and in
        `trusted`) with the kept tree: O(log n) reads each. None when the kept tree does
        not reach that far."""
        events = records.read_case_events(self.db, self.events_table, case)
        links = [LinkRow(**row) for row in records.read_case_links(self.db, case)]
        if not events and not links:
            raise CaseNotFound(f"There is no case {case}.")
        tree = StoredTree(self.db, tail_limit=TAIL_LIMIT)
        try:
            report = verify_case(
                case,
                events,
                links,
                records.latest_checkpoint(self.db),
                self.signer.verifier,
                tree.proofs,
                tree.consistency_proof,
                decode=self.decode,
                trusted=trusted,
            )
            report.log_size = tree.size
        except (TreeIncomplete, ValueError) as error:  # a lost root, a damaged chain row
            log.info("case %s: the kept tree cannot prove it (%s); reading the log", case, error)
            return None
        self.check_snapshots(report, case)
        return report

    def check_witnesses(
        self, report: Report, keys: Sequence[WitnessKey], quorum: int, *, latest: bool = False
    ) -> None:
        """Every checkpoint (or the latest) must carry `quorum` valid cosignatures by the
        given witnesses."""
        check_quorum(report, self._vouched(witnesses.cosignatures, [], latest), keys, quorum)

    def check_timestamps(
        self, report: Report, certificate: Certificate, *, latest: bool = False
    ) -> None:
        """Every checkpoint (or the latest) must carry an RFC 3161 token of this TSA over
        its signed note."""
        check_timestamps(report, self._vouched(witnesses.timestamps, None, latest), certificate)

    def _vouched(
        self, read: Callable[..., dict[int, Any]], missing: Any, latest: bool
    ) -> Iterator[Any]:
        """(number, note, what vouches for it) of every checkpoint (or the latest), read a
        chunk of checkpoints at a time (a store holds one for every five minutes)."""
        if latest:
            last = records.latest_checkpoint(self.db)
            if last is not None:
                by_number = read(self.db, int(last.number))
                yield last.number, str(last.note), by_number.get(int(last.number), missing)
            return
        rows = records.iter_checkpoints(self.db, VOUCHED_CHUNK)
        while chunk := list(itertools.islice(rows, VOUCHED_CHUNK)):
            by_number = read(self.db, int(chunk[0].number), int(chunk[-1].number))
            for r in chunk:
                yield r.number, str(r.note), by_number.get(int(r.number), missing)

    def check_range(
        self, bounds: stream.Bounds, sizes: Sequence[int], case: Any = None, progress: Any = None
    ) -> Partial:
        """One range of the log checked (`evidence.stream.RangeChecker`)."""
        db, table = self.db, self.events_table
        return stream.check_range(db, table, bounds, sizes, self.decode, case, progress)

    def _ranges(
        self, bounds: Sequence[stream.Bounds], sizes: Sequence[int], case: Any, progress: Any
    ) -> list[Partial]:
        return [self.check_range(b, sizes, case, progress) for b in bounds]

    def check_snapshots(self, report: Report, case: str | None = None) -> None:
        """Every stored snapshot must be the state its case's events give at its version.

        Snapshots are not in the chain (they are a cache of the replay); a rewritten one
        would change what the case's state reads, so it is compared with a fresh replay."""
        store: Any = getattr(self.app, "snapshots", None)
        if store is None:
            return
        table = store.recorder.events_table_name
        for row in records.read_snapshots(self.db, table, case):
            case_id, version = _case_id(str(row.case_id)), row.version
            if case is not None and case_id != case:
                continue
            where = {"case": case_id, "version": version}
            try:
                snapshot: Any = self.app.mapper.to_domain_event(records.as_stored_event(row))
            except Exception as error:  # unreadable bytes are the finding
                report.add(
                    "snapshot_unreadable",
                    f"Case {case_id}: its snapshot at version {version} cannot be read "
                    f"({type(error).__name__}): the snapshot was altered.",
                    **where,
                )
                continue
            try:
                aggregate: Any = None
                event: Any
                for event in self.app.events.get(snapshot.originator_id, lte=version):
                    aggregate = event.mutate(aggregate)
                fresh = type(snapshot).take(aggregate)
                same = fresh.topic == snapshot.topic and self._canonical(
                    fresh.state
                ) == self._canonical(snapshot.state)
            except Exception:
                same = False
            if not same:
                report.add(
                    "snapshot_altered",
                    f"Case {case_id}: its snapshot at version {version} is not the state its "
                    "events give at that version: the snapshot was altered.",
                    **where,
                )

    def _canonical(self, state: Any) -> str:
        encoded = self.app.mapper.transcoder.encode(state)
        return json.dumps(json.loads(encoded), sort_keys=True)

    def decode(self, row: StoredRow) -> Decoded:
        """What the stored event says of itself: its bytes decrypted (with the cipher key)
        and parsed as the JSON the application's transcoder wrote."""
        mapper: Any = self.app.mapper
        state = row[4]  # by index: the verifier may give the plain row
        if mapper.cipher is not None:
            state = mapper.cipher.decrypt(bytes(state))
        if mapper.compressor is not None:
            state = mapper.compressor.decompress(bytes(state))
        text = bytes(state).decode("utf-8")
        try:  # json.loads without its whitespace matching: the verifier runs it per event
            document, end = _scan(text, 0)
        except StopIteration:
            end = -1
        if end != len(text):
            document = json.loads(text)  # anything else: as json.loads reads it, or its error
        stamp = document["timestamp"]
        return Decoded(
            event_type=type_of_topic(str(row[3])),
            recorded_at=stamp["_data_"] if isinstance(stamp, dict) else stamp,
            actor=document["actor"],
            actor_role=document["actor_role"],
            actor_unit=document["actor_unit"],
        )

    # --- the Merkle log -----------------------------------------------------------------

    def tree(self) -> StoredTree:
        """The log's Merkle tree: the kept roots, and the hash-chain rows after them."""
        return StoredTree(self.db)

    def write_checkpoint(self, *, force: bool = False) -> records.CheckpointRow | None:
        """Signs the log's current size and root. Without `force`, only if the log grew.

        First keeps the roots of the blocks of the log completed since the last
        checkpoint (`store.log_tree.extend`); refuses to sign a log that no longer
        extends the last checkpoint (and forgets the roots just kept)."""
        last = records.latest_checkpoint(self.db)
        previous, last_number = None, last.number if last is not None else None
        if last is not None:
            try:
                previous = open_checkpoint(str(last.note), self.signer.verifier)
            except NoteError as error:
                raise LogInconsistent(
                    f"The last checkpoint (#{last.number}) does not verify ({error}); "
                    "run `casetrail audit verify`.",
                ) from None
        kept, _ = log_tree.last_block(self.db)
        try:
            try:
                log_tree.extend(self.db)
            except TreeIncomplete:  # derived data that lost rows: kept again from the log
                log.warning("the kept tree of the log lost roots; keeping it again from the log")
                kept = 0
                log_tree.forget(self.db)
                log_tree.extend(self.db)
            tree = self.tree()
            size = tree.size
            if previous is not None and (
                previous.size > size or tree.root(previous.size) != previous.root
            ):
                log_tree.forget(self.db, kept * BLOCK)
                raise LogInconsistent(
                    f"The log no longer extends checkpoint #{last_number} "
                    f"({previous.size} events); run `casetrail audit verify`.",
                )
            if previous is not None and not force and previous.size == size:
                return None
            root = tree.root(size)
        except (ValueError, TreeIncomplete):  # a hash that is not 32 bytes of hex, a lost root
            raise LogInconsistent(
                "The hash-chain table or the kept tree is damaged; run `casetrail audit verify`."
            ) from None
        checkpoint = Checkpoint(
            origin=self.signer.name,
            size=size,
            root=root,
            time=self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        note = self.signer.sign_note(checkpoint.text())
        number = records.insert_checkpoint(
            self.db, checkpoint.size, checkpoint.root.hex(), checkpoint.time, note
        )
        if number is None:
            return None
        log.info("checkpoint #%s: %s events", number, checkpoint.size)
        return records.CheckpointRow(number, checkpoint.size, checkpoint.root.hex(), note)

    def rebuild_tree(self) -> int:
        """Forgets the kept tree and keeps it again from the hash-chain table (it is
        derived data); the number of leaves it covers now."""
        log_tree.forget(self.db)
        try:
            return log_tree.extend(self.db) * BLOCK
        except ValueError:
            raise LogInconsistent(
                "The hash-chain table is damaged; run `casetrail audit verify`."
            ) from None

    def checkpoints(self) -> list[dict[str, Any]]:
        """Every checkpoint, each with the consistency proof from the one before it, the
        witnesses' cosignatures and its RFC 3161 timestamp token."""
        tree = self.tree()
        size = tree.size
        cosigned = witnesses.cosignatures(self.db)
        stamped = witnesses.timestamps(self.db)
        result = []
        previous: Checkpoint | None = None
        for row in records.read_checkpoints(self.db):
            entry: dict[str, Any] = {
                "number": row.number,
                "tree_size": row.tree_size,
                "root_hash": row.root_hash,
                "note": row.note,
                "cosignatures": cosigned.get(int(row.number), []),
                "timestamp": stamped.get(int(row.number)),
            }
            try:
                checkpoint = open_checkpoint(str(row.note), self.signer.verifier)
            except NoteError:
                entry["consistency_proof"] = None
                result.append(entry)
                continue
            entry["time"] = checkpoint.time
            if previous is not None and previous.size <= checkpoint.size <= size:
                entry["consistency_from"] = previous.size
                entry["consistency_proof"] = [
                    node.hex()
                    for node in _kept(tree.consistency_proof, previous.size, checkpoint.size)
                ]
            else:
                entry["consistency_from"] = None
                entry["consistency_proof"] = [] if previous is None else None
            result.append(entry)
            previous = checkpoint
        return result

    def inclusion(self, position: int, checkpoint_number: int | None = None) -> dict[str, Any]:
        """The proof that the event at `position` is in a checkpoint (the latest by default)."""
        rows = records.read_checkpoints(self.db)
        if checkpoint_number is not None:
            rows = [row for row in rows if row.number == checkpoint_number]
        if not rows:
            raise CaseNotFound("There is no such checkpoint.", code="checkpoint_not_found")
        row = rows[-1]
        try:
            checkpoint = open_checkpoint(str(row.note), self.signer.verifier)
        except NoteError as error:
            raise LogInconsistent(
                f"Checkpoint #{row.number} does not verify ({error}); run `casetrail audit verify`."
            ) from None
        tree = self.tree()
        index = _kept(tree.leaf_index, position)
        chain_hash = records.read_chain_hash(self.db, position)
        if index is None or chain_hash is None:
            raise CaseNotFound(f"There is no event at position {position}.", code="event_not_found")
        if index >= checkpoint.size:
            raise CaseNotFound(
                f"The event at position {position} is not yet in checkpoint #{row.number}.",
                code="not_yet_checkpointed",
            )
        return {
            "position": position,
            "hash": chain_hash,
            "leaf_index": index,
            "tree_size": checkpoint.size,
            "checkpoint": {"number": row.number, "note": row.note},
            "inclusion_proof": [
                node.hex() for node in _kept(tree.inclusion_proof, index, checkpoint.size)
            ],
        }

    # --- portable evidence ----------------------------------------------------------------

    def export_case(self, case_id: str, actor: Actor = CLI_AUDITOR) -> str:
        """The case's events with their hashes and inclusion proofs against a signed
        checkpoint, and the log's public key: verifiable with nothing else."""
        case_id = _case_id(case_id)
        links = records.read_case_links(self.db, case_id)
        if not links:
            raise CaseNotFound(f"There is no case {case_id}.")
        self.access.record(actor, [case_id], "audit export", granted=True)
        try:
            return self._export(case_id, links)
        except (LookupError, ValueError, NoteError):  # rows missing or malformed
            raise LogInconsistent(
                f"Case {case_id} cannot be exported as stored; run `casetrail audit verify`."
            ) from None

    def _proved(
        self, positions: list[int]
    ) -> tuple[records.CheckpointRow, dict[int, tuple[int, list[bytes]] | None]] | None:
        """The latest checkpoint and each position's leaf index and inclusion proof in it;
        None if there is no checkpoint or it does not cover them all."""
        last = records.latest_checkpoint(self.db)
        if last is None:
            return None
        checkpoint = open_checkpoint(str(last.note), self.signer.verifier)
        found = self.tree().proofs(positions, checkpoint.size)
        if any(found[position] is None for position in positions):  # KeyError: no leaf
            return None
        return last, found

    def _export(self, case_id: str, links: list[dict[str, Any]]) -> str:
        positions = [int(link["position"]) for link in links]
        proved = self._proved(positions)
        if proved is None:
            self.write_checkpoint(force=True)
            proved = self._proved(positions)
        if proved is None:
            raise LookupError("the case's events are not all in the latest checkpoint")
        last, proofs = proved
        stored = {
            row.version: row
            for row in records.read_stored_at(
                self.db, self.events_table, [int(link["position"]) for link in links]
            )
        }
        events = []
        for link in links:
            row = stored[link["version"]]
            index, proof = proofs[int(link["position"])] or (0, [])
            events.append(
                {
                    "position": int(link["position"]),
                    "version": int(link["version"]),
                    "topic": row.topic,
                    "state": base64.b64encode(bytes(row.state)).decode(),
                    "type": link["event_type"],
                    "recorded_at": link["recorded_at"],
                    "actor": link["actor"],
                    "actor_role": link["actor_role"],
                    "actor_unit": link["actor_unit"],
                    "prev_hash": link["prev_hash"],
                    "hash": link["hash"],
                    "leaf_index": index,
                    "inclusion_proof": [node.hex() for node in proof],
                }
            )
        document = {
            "format": EXPORT_FORMAT,
            "case": case_id,
            "public_key": self.public_key,
            "checkpoint": last.note,
            "cosignatures": witnesses.cosignatures(self.db, int(last.number)).get(
                int(last.number), []
            ),
            "timestamp": witnesses.timestamps(self.db, int(last.number)).get(int(last.number)),
            "events": events,
        }
        return canonical_export(document)


def _kept(read: Callable[..., Any], *args: Any) -> Any:
    """A read of the kept tree; a lost root of it is the log's inconsistency (409)."""
    try:
        return read(*args)
    except (TreeIncomplete, ValueError) as error:  # a lost root, a damaged chain row
        raise LogInconsistent(
            f"The kept Merkle tree cannot answer ({error}); run `casetrail audit verify`, "
            "then `casetrail audit rebuild-tree`."
        ) from None


def _case_id(value: str) -> str:
    from uuid import UUID

    try:
        return str(UUID(str(value)))
    except ValueError:
        raise CaseNotFound(f"There is no case {value}.") from None
