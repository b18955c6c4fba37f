"""`casetrail-verify`: checks a case export, or the one a dossier PDF embeds, with nothing
but Python and `cryptography` (no casetrail install, no database). The only module of
`evidence` that reads a file: the one named on its command line.

    casetrail-verify DOSSIER.pdf|EXPORT.json [--public-key KEY|FILE] [--json]
    PYTHONPATH=<the directory holding evidence/> python -m evidence.cli DOSSIER.pdf

Exit status 0 only when the export verifies, 1 when a problem is found, 2 when the file
cannot be read as an export at all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from evidence.note import NoteError, VerifierKey
from evidence.offline import verify_export
from evidence.pdf import ExtractError, export_from_pdf


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="casetrail-verify",
        description="Verify a casetrail case export or dossier offline.",
    )
    parser.add_argument("file", type=Path, help="a dossier (PDF) or an export (JSON)")
    parser.add_argument("--public-key", help="the log's public key, or a file holding it")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    trusted = None
    if args.public_key is not None:
        text = args.public_key
        if Path(text).is_file():
            text = Path(text).read_text(encoding="utf-8")
        try:
            trusted = VerifierKey.parse(text.strip())
        except NoteError as error:
            print(f"error: --public-key: {error}", file=sys.stderr)
            return 2
    try:
        data = args.file.read_bytes()
        if data.startswith(b"%PDF-"):
            data = export_from_pdf(data)
        text = data.decode("utf-8")
    except (OSError, ExtractError, UnicodeDecodeError) as error:
        print(f"error: {args.file}: {error}", file=sys.stderr)
        return 2
    report = verify_export(text, trusted)
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=1))
        return 0 if report.ok else 1
    if trusted is None:
        print(
            "note: no --public-key given; checked against the key inside the file, which "
            "proves integrity only if that key is the log's."
        )
    for problem in report.problems:
        print(f"PROBLEM [{problem.code}] {problem.message}")
    latest = report.checkpoint
    covered = (
        f"; signed checkpoint of {latest.size} events at {latest.time} verified"
        if latest is not None
        else ""
    )
    verdict = "verified" if report.ok else f"{len(report.problems)} problem(s) found"
    print(f"export {args.file.name}: {report.checked_events} events checked{covered}: {verdict}.")
    return 0 if report.ok else 1


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
