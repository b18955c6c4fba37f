"""`casetrail witness`: an independent witness speaking C2SP tlog-witness over HTTP.

Its own Ed25519 key (a file, made on first start), its own state file (per log origin, the
size and root it last cosigned), its own process; in production on another machine, run by
someone other than the log's operator. It needs no casetrail store: only the logs' public
keys. The protocol itself is `evidence.witness`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import click

from casetrail.files import write_private
from evidence.note import NoteError, VerifierKey
from evidence.witness import Answer, WitnessSigner, WitnessState, add_checkpoint

MAX_BODY = 1 << 16


def load_witness_key(path: Path, name: str | None) -> WitnessSigner:
    if path.exists():
        return WitnessSigner.parse(path.read_text())
    seed = os.urandom(32)
    signer = WitnessSigner(name or "witness-" + hashlib.sha256(seed).hexdigest()[:8], seed)
    write_private(path, signer.encode() + "\n")
    return signer


class Witness:
    """The witness's state on disk; one request at a time changes it."""

    def __init__(self, signer: WitnessSigner, state_file: Path, logs: list[VerifierKey]) -> None:
        self.signer = signer
        self.state_file = state_file
        self.lock = threading.Lock()
        heads = (
            WitnessState.heads_of(json.loads(state_file.read_text())) if state_file.exists() else {}
        )
        self.state = WitnessState({key.name: key for key in logs}, heads)

    def add(self, body: str) -> Answer:
        with self.lock:
            before = dict(self.state.heads)
            answer = add_checkpoint(self.state, body, self.signer, lambda: int(time.time()))
            if self.state.heads != before:
                # The new head is on disk before the cosignature leaves: a witness that
                # crashes never forgets what it cosigned.
                temporary = self.state_file.with_suffix(".tmp")
                write_private(temporary, json.dumps(self.state.as_json()))
                os.replace(temporary, self.state_file)
            return answer


def handler_for(witness: Witness) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != "/add-checkpoint":
                return self._send(Answer(404, "not found\n"))
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if not 0 < length <= MAX_BODY:
                return self._send(Answer(400, "a body of at most 64 KiB\n"))
            try:
                body = self.rfile.read(length).decode("utf-8")
            except UnicodeDecodeError:
                return self._send(Answer(400, "the body is not UTF-8\n"))
            self._send(witness.add(body))

        def _send(self, answer: Answer) -> None:
            data = answer.text.encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # the requests carry only checkpoints; nothing worth a line per request

    return Handler


@click.command()
@click.option("--key-file", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="The witness's name, when its key is made.")
@click.option("--state", "state_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--log", "logs", multiple=True, help="A log's public key (note verifier key).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=7380, show_default=True, type=int, help="0: any free port.")
@click.option("--print-key", is_flag=True, help="Print the witness's public key and stop.")
def witness(
    key_file: Path,
    name: str | None,
    state_file: Path | None,
    logs: tuple[str, ...],
    host: str,
    port: int,
    print_key: bool,
) -> None:
    """Runs an independent witness (C2SP tlog-witness, `POST /add-checkpoint`): it cosigns
    a log's checkpoint only with a valid consistency proof from the last one it cosigned."""
    try:
        signer = load_witness_key(key_file, name)
        keys = [VerifierKey.parse(text) for text in logs]
    except NoteError as error:
        raise click.BadParameter(str(error)) from None
    if print_key:
        click.echo(signer.key.encode())
        return
    if state_file is None or not keys:
        raise click.UsageError("a witness needs --state and at least one --log key")
    server = ThreadingHTTPServer((host, port), handler_for(Witness(signer, state_file, keys)))
    click.echo(f"witness {signer.key.encode()} on http://{host}:{server.server_address[1]}")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
