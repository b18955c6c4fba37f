"""The outside parties a verifier trusts, as `casetrail audit verify` and `verify-export`
take them: the witnesses' keys and the quorum of them, the time-stamping authority's
certificate."""

from __future__ import annotations

from pathlib import Path

import click
from cryptography.x509 import Certificate

from evidence.note import NoteError
from evidence.timestamp import TimestampError, load_certificate
from evidence.witness import WitnessKey


def witness_keys(texts: tuple[str, ...], quorum: int) -> list[WitnessKey]:
    keys = []
    for text in texts:
        candidate = Path(text)
        try:
            keys.append(WitnessKey.parse(candidate.read_text() if candidate.is_file() else text))
        except NoteError as error:
            raise click.BadParameter(str(error), param_hint="--witness-key") from None
    if quorum > len(keys):
        raise click.BadParameter(
            f"a quorum of {quorum} needs at least {quorum} --witness-key", param_hint="--quorum"
        )
    return keys


witness_options = [
    click.option(
        "--witness-key",
        "witness_texts",
        multiple=True,
        help="A witness's public key (or a file holding it); repeat for each witness.",
    ),
    click.option(
        "--tsa-cert",
        "tsa_cert",
        default=None,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="The time-stamping authority's certificate (PEM or DER): every checkpoint "
        "must carry its RFC 3161 timestamp.",
    ),
    click.option(
        "--quorum",
        default=0,
        type=click.IntRange(min=0),
        help="How many of the witnesses must have cosigned each checkpoint.",
    ),
]


def tsa_certificate(path: Path | None) -> Certificate | None:
    try:
        return None if path is None else load_certificate(path.read_bytes())
    except TimestampError as error:
        raise click.BadParameter(str(error), param_hint="--tsa-cert") from None


def outside_parties(command):  # type: ignore[no-untyped-def]
    """The options above on a verify command."""
    for option in reversed(witness_options):
        command = option(command)
    return command
