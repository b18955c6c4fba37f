"""The audit trail of a running casetrail: verification, signed checkpoints, proofs,
case exports and the read-access log, over the event store's own database.

The checks themselves live in the pure modules (`verifier`, `offline`, `merkle`, `note`);
this module reads rows, builds proofs and signs.
"""

from __future__ import annotations

import base64
import getpass
import json
import logging
from collections.abc import Callable, Iterable, Sequence
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
from evidence.merkle import leaf_hash, log_entry
from evidence.note import Checkpoint, NoteError, open_checkpoint
from evidence.offline import EXPORT_FORMAT, canonical_export
from evidence.stream import Partial, check_cases, combine, range_sizes
from evidence.timestamp import check_timestamps
from evidence.tree import Tree
from evidence.verifier import (
    Decoded,
    Report,
    StoredRow,
    open_checkpoints,
    type_of_topic,
)
from evidence.witness import WitnessKey, check_quorum
from store.db import Database

log = logging.getLogger("casetrail.audit")

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
        processes: it maps `check_range` over them), holding one chunk at a time."""
        if case is not None:
            case = _case_id(case)
            events, links = stream.case_rows(self.db, self.events_table, case)
            if not events and not links:
                raise CaseNotFound(f"There is no case {case}.")
        checkpoints = records.read_checkpoints(self.db)
        count = stream.count_events(self.db, self.events_table)
        bounds = stream.plan(self.db, self.events_table, count, range_sizes(count, 8))
        opened = open_checkpoints(Report(), checkpoints, self.signer.verifier, trusted)
        sizes = sorted({checkpoint.size for _, _, checkpoint in opened})
        partials = list((ranges or self._ranges)(bounds, sizes, case, progress))
        report, _ = combine(partials, checkpoints, self.signer.verifier, trusted)
        irregular = set().union(*(p.irregular for p in partials))
        irregular |= stream.duplicated(self.db, self.events_table)
        check_cases(
            report,
            sorted(irregular if case is None else irregular & {case}),
            lambda c: stream.case_rows(self.db, self.events_table, c),
        )
        self.check_snapshots(report, case)
        for position in self.access.index_mismatches() if case is None else []:
            report.add(
                "access_index_altered",
                f"The read-access index at position {position} is not what its record "
                "names: the index was altered.",
                position=position,
            )
        return report

    def check_witnesses(self, report: Report, keys: Sequence[WitnessKey], quorum: int) -> None:
        """Every checkpoint must carry `quorum` valid cosignatures by the given witnesses."""
        check_quorum(report, self._vouched(witnesses.cosignatures(self.db), []), keys, quorum)

    def check_timestamps(self, report: Report, certificate: Certificate) -> None:
        """Every checkpoint must carry an RFC 3161 token of this TSA over its signed note."""
        check_timestamps(report, self._vouched(witnesses.timestamps(self.db), None), certificate)

    def _vouched(self, by_number: dict[int, Any], missing: Any) -> list[Any]:
        rows = records.read_checkpoints(self.db)
        return [(r.number, str(r.note), by_number.get(int(r.number), missing)) for r in rows]

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
        for row in records.read_snapshots(self.db, table):
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
        state = bytes(row.state)
        if mapper.cipher is not None:
            state = mapper.cipher.decrypt(state)
        if mapper.compressor is not None:
            state = mapper.compressor.decompress(state)
        document = json.loads(state.decode("utf-8"))
        stamp = document["timestamp"]
        return Decoded(
            event_type=type_of_topic(str(row.topic)),
            recorded_at=stamp["_data_"] if isinstance(stamp, dict) else stamp,
            actor=document["actor"],
            actor_role=document["actor_role"],
            actor_unit=document["actor_unit"],
        )

    # --- the Merkle log -----------------------------------------------------------------

    def tree(self) -> tuple[Tree, list[int], list[str]]:
        """The tree over the log as the chain table records it, its positions and hashes."""
        try:
            entries = records.read_log_hashes(self.db)
            leaves = [leaf_hash(log_entry(position, bytes.fromhex(h))) for position, h in entries]
        except ValueError:  # a hash that is not 32 bytes of hex: the table was altered
            raise LogInconsistent(
                "The hash-chain table is damaged; run `casetrail audit verify`."
            ) from None
        return Tree(leaves), [p for p, _ in entries], [h for _, h in entries]

    def write_checkpoint(self, *, force: bool = False) -> records.CheckpointRow | None:
        """Signs the log's current size and root. Without `force`, only if the log grew.

        Refuses to sign a log that no longer extends the last checkpoint."""
        tree, _, _ = self.tree()
        last = records.latest_checkpoint(self.db)
        if last is not None:
            try:
                previous = open_checkpoint(str(last.note), self.signer.verifier)
            except NoteError as error:
                raise LogInconsistent(
                    f"The last checkpoint (#{last.number}) does not verify ({error}); "
                    "run `casetrail audit verify`.",
                ) from None
            if previous.size > tree.size or tree.root(previous.size) != previous.root:
                raise LogInconsistent(
                    f"The log no longer extends checkpoint #{last.number} "
                    f"({previous.size} events); run `casetrail audit verify`.",
                )
            if not force and previous.size == tree.size:
                return None
        checkpoint = Checkpoint(
            origin=self.signer.name,
            size=tree.size,
            root=tree.root(),
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

    def checkpoints(self) -> list[dict[str, Any]]:
        """Every checkpoint, each with the consistency proof from the one before it, the
        witnesses' cosignatures and its RFC 3161 timestamp token."""
        tree, _, _ = self.tree()
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
            if previous is not None and previous.size <= checkpoint.size <= tree.size:
                entry["consistency_from"] = previous.size
                entry["consistency_proof"] = [
                    node.hex() for node in tree.consistency_proof(previous.size, checkpoint.size)
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
        tree, positions, hashes = self.tree()
        try:
            index = positions.index(position)
        except ValueError:
            raise CaseNotFound(
                f"There is no event at position {position}.", code="event_not_found"
            ) from None
        if index >= checkpoint.size:
            raise CaseNotFound(
                f"The event at position {position} is not yet in checkpoint #{row.number}.",
                code="not_yet_checkpointed",
            )
        return {
            "position": position,
            "hash": hashes[index],
            "leaf_index": index,
            "tree_size": checkpoint.size,
            "checkpoint": {"number": row.number, "note": row.note},
            "inclusion_proof": [
                node.hex() for node in tree.inclusion_proof(index, checkpoint.size)
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
        except (KeyError, ValueError, NoteError):  # rows missing or malformed
            raise LogInconsistent(
                f"Case {case_id} cannot be exported as stored; run `casetrail audit verify`."
            ) from None

    def _export(self, case_id: str, links: list[dict[str, Any]]) -> str:
        tree, positions, _ = self.tree()
        last = records.latest_checkpoint(self.db)
        index_of = {position: index for index, position in enumerate(positions)}
        needed = max(index_of[int(link["position"])] for link in links) + 1
        if last is None or int(last.tree_size) < needed:
            self.write_checkpoint(force=True)
            last = records.latest_checkpoint(self.db)
            tree, positions, _ = self.tree()
        assert last is not None
        checkpoint = open_checkpoint(str(last.note), self.signer.verifier)
        stored = {
            row.version: row
            for row in records.read_stored_at(
                self.db, self.events_table, [int(link["position"]) for link in links]
            )
        }
        events = []
        for link in links:
            row = stored[link["version"]]
            index = index_of[int(link["position"])]
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
                    "inclusion_proof": [
                        node.hex() for node in tree.inclusion_proof(index, checkpoint.size)
                    ],
                }
            )
        document = {
            "format": EXPORT_FORMAT,
            "case": case_id,
            "public_key": self.public_key,
            "checkpoint": last.note,
            "cosignatures": witnesses.cosignatures(self.db).get(int(last.number), []),
            "timestamp": witnesses.timestamps(self.db).get(int(last.number)),
            "events": events,
        }
        return canonical_export(document)


def _case_id(value: str) -> str:
    from uuid import UUID

    try:
        return str(UUID(str(value)))
    except ValueError:
        raise CaseNotFound(f"There is no case {value}.") from None
