"""The export a casetrail dossier carries, taken out of the PDF. Pure: bytes in, bytes out.

A dossier embeds the case export as a PDF embedded file (ISO 32000 §7.11.4): a stream
whose dictionary says `/Type /EmbeddedFile`, stored as written or FlateDecode-compressed,
with its `/Size` and `/CheckSum` (the MD5 of the file) in `/Params`. This reader parses
just enough of the PDF to find those streams; anything it cannot account for is an
error, never a guess: the verifier then checks every byte of what it returns.
"""

from __future__ import annotations

import hashlib
import re
import zlib

JSON_SUBTYPE = b"/application#2Fjson"
_OBJECT = re.compile(rb"(\d+)\s+(\d+)\s+obj\b\s*")
_INT = re.compile(rb"\s*(\d+)\s*$")


class ExtractError(ValueError):
    """The PDF holds no export this reader can take out intact."""


def _dictionary(data: bytes, start: int) -> tuple[bytes, int]:
    """The `<< … >>` dictionary starting at `start` (nested ones included) and its end."""
    if data[start : start + 2] != b"<<":
        raise ExtractError("not a dictionary")
    depth, at = 0, start
    while at < len(data) - 1:
        pair = data[at : at + 2]
        if pair == b"<<":
            depth, at = depth + 1, at + 2
        elif pair == b">>":
            depth, at = depth - 1, at + 2
            if depth == 0:
                return data[start:at], at
        elif data[at : at + 1] == b"(":  # a literal string: skip it, escapes and all
            at = _skip_string(data, at)
        else:
            at += 1
    raise ExtractError("a dictionary is not closed")


def _skip_string(data: bytes, at: int) -> int:
    depth = 0
    while at < len(data):
        char = data[at : at + 1]
        if char == b"\\":
            at += 2
            continue
        if char == b"(":
            depth += 1
        elif char == b")":
            depth -= 1
            if depth == 0:
                return at + 1
        at += 1
    raise ExtractError("a string is not closed")


def _entry(dictionary: bytes, name: bytes) -> bytes | None:
    """The raw value of a direct `/Name value` entry (a number, a name or `n 0 R`)."""
    found = re.search(
        rb"/" + name + rb"(?![A-Za-z0-9#])\s*(\d+\s+\d+\s+R|\d+|/[^\s/<>\[\]()]+|<[0-9A-Fa-f]*>)",
        dictionary,
    )
    return found.group(1) if found else None


def _objects(data: bytes) -> dict[int, int]:
    """Object number -> offset of its body (the last definition wins, as in an update)."""
    return {int(m.group(1)): m.end() for m in _OBJECT.finditer(data)}


def _length(value: bytes | None, data: bytes, objects: dict[int, int]) -> int:
    if value is None:
        raise ExtractError("an embedded file has no /Length")
    if value.endswith(b"R"):
        number = int(value.split()[0])
        if number not in objects:
            raise ExtractError("an embedded file's /Length names no object")
        body = data[objects[number] : data.index(b"endobj", objects[number])]
        found = _INT.match(body)
        if found is None:
            raise ExtractError("an embedded file's /Length is not a number")
        return int(found.group(1))
    if not value.isdigit():
        raise ExtractError("an embedded file's /Length is not a number")
    return int(value)


def embedded_files(data: bytes) -> list[tuple[bytes, bytes]]:
    """Every embedded file of the PDF: (its dictionary, its bytes, decoded and checked)."""
    if not data.startswith(b"%PDF-"):
        raise ExtractError("the file is not a PDF")
    objects = _objects(data)
    found = []
    for match in _OBJECT.finditer(data):
        if data[match.end() : match.end() + 2] != b"<<":
            continue
        dictionary, end = _dictionary(data, match.end())
        if not re.search(rb"/Type\s*/EmbeddedFile\b", dictionary):
            continue
        stream = re.compile(rb"\s*stream\r?\n").match(data, end)
        if stream is None:
            raise ExtractError("an embedded file has no stream")
        length = _length(_entry(dictionary, b"Length"), data, objects)
        content = data[stream.end() : stream.end() + length]
        if len(content) != length or not re.compile(rb"\r?\n?endstream").match(
            data, stream.end() + length
        ):
            raise ExtractError("an embedded file's stream does not end where its /Length says")
        found.append((dictionary, _decoded(dictionary, content)))
    return found


def _decoded(dictionary: bytes, content: bytes) -> bytes:
    filters = re.findall(rb"/Filter\s*\[?\s*((?:/\w+\s*)*)\]?", dictionary)
    names = filters[0].split() if filters else []
    if names == [b"/FlateDecode"]:
        try:
            content = zlib.decompress(content)
        except zlib.error as error:
            raise ExtractError(f"the embedded file does not decompress ({error})") from None
    elif names:
        raise ExtractError(f"the embedded file's filter {b' '.join(names).decode()} is not read")
    size = re.search(rb"/Size\s+(\d+)", dictionary)
    if size is not None and int(size.group(1)) != len(content):
        raise ExtractError("the embedded file is not of the size the PDF records")
    checksum = re.search(rb"/CheckSum\s*<([0-9A-Fa-f]*)>", dictionary)
    if (
        checksum is not None
        and hashlib.md5(content).hexdigest() != checksum.group(1).decode().lower()
    ):
        raise ExtractError("the embedded file does not have the checksum the PDF records")
    return content


def export_from_pdf(data: bytes) -> bytes:
    """The one JSON file a dossier embeds."""
    files = embedded_files(data)
    exports = [content for dictionary, content in files if JSON_SUBTYPE in dictionary]
    if len(exports) != 1:
        raise ExtractError(
            f"the PDF embeds {len(exports)} JSON files; a casetrail dossier embeds exactly one"
        )
    return exports[0]
