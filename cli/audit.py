"""`casetrail audit …`: verify the store, sign a checkpoint, export a case and check an
export offline."""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from casetrail.audit import stream
from casetrail.audit.stream import Bounds
from casetrail.bootstrap import Casetrail
from casetrail.files import write_private
from cli.dossier import dossier
from cli.store import build as _build
from cli.trust import outside_parties, tsa_certificate, witness_keys
from evidence.note import NoteError, VerifierKey
from evidence.offline import verify_export
from evidence.stream import Partial
from evidence.verifier import Report
from workers.witnessing import stamp, witness

# From this many events on, the whole-store verify checks its ranges in two processes
# (the machine it was measured on has two cores; the spawn costs about a second).
PARALLEL_FROM = 100_000


def _print_report(report: Report, *, as_json: bool, what: str) -> None:
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=1))
        return
    for problem in report.problems:
        click.echo(f"PROBLEM [{problem.code}] {problem.message}")
    latest = report.checkpoint
    covered = (
        f"; signed checkpoint of {latest.size} events at {latest.time} verified"
        if latest is not None
        else "; no signed checkpoint covers the log yet"
    )
    if report.after_checkpoint and latest is not None:
        covered += (
            f" ({report.after_checkpoint} event(s) appended after it: their chains verified, "
            "no signed checkpoint covers them yet)"
        )
    verdict = "verified" if report.ok else f"{len(report.problems)} problem(s) found"
    click.echo(f"{what}: {report.checked_events} events checked{covered}: {verdict}.")


@click.group()
def audit() -> None:
    """The tamper-evident audit trail: verify, checkpoint, export."""


@audit.command("verify")
@click.option("--case", "case_id", default=None, help="Verify only this case's chain.")
@click.option(
    "--checkpoint",
    "trusted",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A signed checkpoint kept outside the store; the log must still match it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=None,
    help=f"Check ranges of the log in this many processes (default: 2 from "
    f"{PARALLEL_FROM:,} events on, 1 below).",
)
@click.option("--data-dir", default=None, help="Data directory (default: CASETRAIL_DATA_DIR).")
@outside_parties
def verify(
    case_id: str | None,
    trusted: tuple[Path, ...],
    as_json: bool,
    processes: int | None,
    data_dir: str | None,
    witness_texts: tuple[str, ...],
    tsa_cert: Path | None,
    quorum: int,
) -> None:
    """Recomputes the hash chains and the Merkle log against the signed checkpoints,
    reading the store in chunks (memory does not grow with the store); with --quorum,
    checks each checkpoint's cosignatures by the given witnesses.

    Exit status 0 only when everything verifies; 1 when a problem is found."""
    keys = witness_keys(witness_texts, quorum)
    certificate = tsa_certificate(tsa_cert)
    ct = _build(data_dir)
    progress = _Progress(ct) if sys.stderr.isatty() else None
    if processes is None:  # one case reads no range of the log
        processes = 1 if case_id is not None or _count(ct) < PARALLEL_FROM else 2
    try:
        report = ct.audit.verify(
            case_id,
            [path.read_text() for path in trusted],
            ranges=_InProcesses(processes, data_dir) if processes > 1 else None,
            progress=progress,
        )
        # One case is proved in the latest checkpoint only: that one must be vouched for.
        latest = case_id is not None
        if quorum:
            ct.audit.check_witnesses(report, keys, quorum, latest=latest)
        if certificate is not None:
            ct.audit.check_timestamps(report, certificate, latest=latest)
    finally:
        ct.close()
        if progress is not None:
            progress.done()
    _print_report(report, as_json=as_json, what=f"case {case_id}" if case_id else "the store")
    sys.exit(0 if report.ok else 1)


class _Progress:
    """`verified 120,000 of 300,000 events (41,000/s)` on stderr, at most twice a second."""

    def __init__(self, ct: Casetrail) -> None:
        self.total = max(_count(ct), 1)
        self.done_events = 0
        self.started = self.shown = time.monotonic()

    def __call__(self, events: int) -> None:
        self.done_events += events
        now = time.monotonic()
        if now - self.shown >= 0.5:
            self.shown = now
            rate = self.done_events / max(now - self.started, 1e-9)
            click.echo(
                f"\rverified {self.done_events:,} of {self.total:,} events ({rate:,.0f}/s)",
                err=True,
                nl=False,
            )

    def done(self) -> None:
        click.echo("\r\033[K", err=True, nl=False)


def _count(ct: Casetrail) -> int:
    return stream.count_events(ct.db, ct.audit.events_table)


_WORKER: list[Casetrail] = []


def _start_worker(data_dir: str | None) -> None:
    _WORKER.append(_build(data_dir))


def _check_range(job: tuple[Bounds, Sequence[int], str | None]) -> Partial:
    return _WORKER[0].audit.check_range(*job)


class _InProcesses:
    """Checks the ranges of the log in `processes` fresh processes, each with its own
    connection to the store; the results come back in log order."""

    def __init__(self, processes: int, data_dir: str | None) -> None:
        self.processes, self.data_dir = processes, data_dir

    def __call__(
        self, bounds: Sequence[Bounds], sizes: Sequence[int], case: str | None, progress: Any
    ) -> Iterator[Partial]:
        context = multiprocessing.get_context("spawn")
        with context.Pool(self.processes, _start_worker, (self.data_dir,)) as pool:
            for partial in pool.imap(_check_range, [(b, sizes, case) for b in bounds]):
                if progress is not None:
                    progress(partial.count)
                yield partial


@audit.command("checkpoint")
@click.option("--data-dir", default=None, help="Data directory (default: CASETRAIL_DATA_DIR).")
def checkpoint(data_dir: str | None) -> None:
    """Signs and stores a checkpoint of the log now, and prints it."""
    ct = _build(data_dir)
    try:
        row = ct.audit.write_checkpoint(force=True)
        cosigned = witness(ct)
        stamp(ct)
    finally:
        ct.close()
    if row is None:
        click.echo("a checkpoint of a larger log was written meanwhile; nothing to do")
        return
    click.echo(f"checkpoint #{row.number}: {row.tree_size} events")
    if cosigned:
        click.echo(f"cosigned by {', '.join(cosigned)}")
    click.echo(str(row.note), nl=False)


@audit.command("rebuild-tree")
@click.option("--data-dir", default=None, help="Data directory (default: CASETRAIL_DATA_DIR).")
def rebuild_tree(data_dir: str | None) -> None:
    """Forgets the kept Merkle tree of the log (derived data, used by one-case verification
    and proofs) and keeps it again from the hash-chain table. Signs nothing: the next
    checkpoint checks it against the last one."""
    ct = _build(data_dir)
    try:
        leaves = ct.audit.rebuild_tree()
    finally:
        ct.close()
    click.echo(f"the kept tree covers the first {leaves} events of the log")


@audit.command("public-key")
@click.option("--data-dir", default=None, help="Data directory (default: CASETRAIL_DATA_DIR).")
def public_key(data_dir: str | None) -> None:
    """Prints the log's public key (the C2SP note verifier key)."""
    ct = _build(data_dir)
    try:
        click.echo(ct.audit.public_key)
    finally:
        ct.close()


@audit.command("export")
@click.option("--case", "case_id", required=True, help="The case to export.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data-dir", default=None, help="Data directory (default: CASETRAIL_DATA_DIR).")
def export(case_id: str, file: Path, data_dir: str | None) -> None:
    """Writes the case's events, hashes and inclusion proofs against a signed checkpoint,
    with the log's public key, to FILE (the export is itself recorded as a read)."""
    ct = _build(data_dir)
    try:
        text = ct.audit.export_case(case_id)
    finally:
        ct.close()
    write_private(file, text)
    click.echo(f"exported case {case_id} to {file}")


@audit.command("dossier")
@click.option("--case", "case_id", required=True, help="The case.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data-dir", default=None, help="Data directory (default: CASETRAIL_DATA_DIR).")
def dossier_command(case_id: str, file: Path, data_dir: str | None) -> None:
    """Writes the case's dossier (证据包) to FILE: a PDF in Chinese with the case's state,
    timeline, reads and signed checkpoint, and its export embedded, which
    `casetrail-verify FILE` checks offline (the dossier is itself recorded as a read)."""
    ct = _build(data_dir)
    try:
        pdf = dossier(ct, case_id)
    finally:
        ct.close()
    write_private(file, pdf)
    click.echo(f"wrote the dossier of case {case_id} to {file}")


@audit.command("verify-export")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--public-key",
    "key_text",
    default=None,
    help="The log's public key (or a file holding it), as `casetrail audit public-key` prints it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@outside_parties
def verify_export_command(
    file: Path,
    key_text: str | None,
    as_json: bool,
    witness_texts: tuple[str, ...],
    tsa_cert: Path | None,
    quorum: int,
) -> None:
    """Checks an exported case with nothing but the file and the public key (no database).

    Exit status 0 only when the export verifies."""
    keys = witness_keys(witness_texts, quorum)
    certificate = tsa_certificate(tsa_cert)
    trusted = None
    if key_text is not None:
        candidate = Path(key_text)
        if candidate.is_file():
            key_text = candidate.read_text()
        try:
            trusted = VerifierKey.parse(key_text)
        except NoteError as error:
            raise click.BadParameter(str(error), param_hint="--public-key") from None
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        click.echo("PROBLEM [export_malformed] The file is not UTF-8 text.")
        sys.exit(1)
    report = verify_export(text, trusted, keys, quorum, certificate)
    if trusted is None and not as_json:
        click.echo(
            "note: no --public-key given; checked against the key inside the file, which "
            "proves integrity only if that key is the log's."
        )
    _print_report(report, as_json=as_json, what=f"export {file.name}")
    sys.exit(0 if report.ok else 1)
