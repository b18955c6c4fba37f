"""Personal data in read models: encrypted display fields and keyed search terms.

With a cipher key (`CASETRAIL_CIPHER_KEY`, the event store's own), names and ID numbers
are stored only AES-encrypted and searched through HMACs of
their tokens, so the raw database file holds no plaintext name or ID number.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import unicodedata
from functools import cache
from typing import Any

import opencc
from eventsourcing.cryptography import AESCipher
from eventsourcing.utils import Environment

from casetrail.personal import ERASED

ENCRYPTED_PREFIX = "enc:"
# Free text (a dispute's summary) is searchable through its first characters only.
SUMMARY_SEARCH_CHARS = 32
# A name is searchable by its characters and pairs among its first characters only (the
# longest real names, transliterated ones, are well under this); whole, it always is.
NAME_SEARCH_CHARS = 24
# What one case may add to the search index, at most: one request's 500 parties with
# 100-character names of random characters would otherwise add ~70,000 rows (issue 14).
# Whole identifiers and whole names come first, then the names' characters and pairs in
# party order, then the summary's pairs; the rest is not indexed.
MAX_CASE_TERMS = 4096
# A query's pairs are taken from its first characters only: no indexed pair lies further
# into a name or a summary, and each pair is one more lookup per candidate (a 200-character
# query was 199 of them, seconds of database time a request).
QUERY_GRAM_CHARS = max(NAME_SEARCH_CHARS, SUMMARY_SEARCH_CHARS)
# Tokens whose terms are remembered (names share their characters and pairs a lot).
TERM_CACHE_SIZE = 200_000
TERM_KEY_ID_LABEL = b"casetrail/search-terms/key-id"


class Privacy:
    """`term_key`: the search terms' HMAC key, in a store with per-person keys derived from
    its master key (casetrail.personal.PersonKeys.search_term_key); without one, the key
    of stores from before (`legacy_term_key`)."""

    def __init__(self, cipher_key: str | None, term_key: bytes | None = None) -> None:
        self.cipher: AESCipher | None = None
        if cipher_key:
            self.cipher = AESCipher(Environment(env={"CIPHER_KEY": cipher_key}))
        self.term_key = term_key if term_key is not None else legacy_term_key(cipher_key)
        # Names the term key without telling anything of it: which key a generation of
        # the read models was built with (projections.generations).
        self.term_key_id = hmac.digest(self.term_key, TERM_KEY_ID_LABEL, "sha256")[:8].hex()
        self._terms: dict[str, int] = {}
        self._names: dict[str, tuple[int | None, tuple[int, ...]]] = {}

    # --- display fields --------------------------------------------------------------

    def seal(self, value: dict[str, Any]) -> str:
        """JSON, encrypted when there is a key."""
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
        if self.cipher is None:
            return text
        return ENCRYPTED_PREFIX + base64.b64encode(self.cipher.encrypt(text.encode())).decode()

    def open(self, stored: str | None) -> dict[str, Any]:
        if not stored:
            return {}
        if stored.startswith(ENCRYPTED_PREFIX):
            if self.cipher is None:
                return {}
            stored = self.cipher.decrypt(base64.b64decode(stored[len(ENCRYPTED_PREFIX) :])).decode()
        value: dict[str, Any] = json.loads(stored)
        return value

    def canonical_row(self, row: dict[str, Any]) -> dict[str, Any]:
        """A row with its sealed fields opened (their ciphertexts are randomised)."""
        return {
            key: self.open(value)
            if isinstance(value, str) and value.startswith(ENCRYPTED_PREFIX)
            else value
            for key, value in row.items()
        }

    # --- search terms ------------------------------------------------------------------

    def term(self, token: str) -> int:
        """The first 64 bits of the token's HMAC-SHA256, as a signed BIGINT."""
        term = self._terms.get(token)
        if term is None:
            digest = hmac.digest(self.term_key, token.encode(), "sha256")
            term = int.from_bytes(digest[:8], "big", signed=True)
            if len(self._terms) >= TERM_CACHE_SIZE:
                self._terms.clear()
            self._terms[token] = term
        return term

    def index_terms(self, names: list[str], identifiers: list[str], text: str = "") -> set[int]:
        """Terms under which a case is found, at most MAX_CASE_TERMS of them, taken in this
        order: identifiers whole, names whole, each name's characters and pairs (of its
        first NAME_SEARCH_CHARS), pairs of the text's first SUMMARY_SEARCH_CHARS."""
        named = [self._name_terms(name) for name in names]
        found: dict[int, None] = {}
        for identifier in identifiers:
            if value := normalise(identifier):
                found[self.term("w:" + value)] = None
        found.update((whole, None) for whole, _ in named if whole is not None)
        for _, grams_of_name in named:
            found.update(dict.fromkeys(grams_of_name))
            if len(found) >= MAX_CASE_TERMS:
                break
        summary = normalise(text)[:SUMMARY_SEARCH_CHARS]
        found.update((self.term("g:" + pair), None) for pair in pairs(summary))
        return set(itertools.islice(found, MAX_CASE_TERMS))

    def _name_terms(self, name: str) -> tuple[int | None, tuple[int, ...]]:
        """A name's terms: whole, and the characters and pairs of its first
        NAME_SEARCH_CHARS, in a fixed order (names repeat a lot)."""
        terms = self._names.get(name)
        if terms is None:
            value = normalise(name)
            whole = self.term("w:" + value) if value else None
            head = value[:NAME_SEARCH_CHARS]
            terms = (whole, tuple(sorted(self.term("g:" + gram) for gram in grams(head))))
            if len(self._names) >= TERM_CACHE_SIZE:
                self._names.clear()
            self._names[name] = terms
        return terms

    def person_key(self, id_number: Any) -> str | None:
        """A person across cases (人員): the keyed hash of their ID number, as the people
        lookup finds them; None where none was recorded or it was erased."""
        value = normalise(id_number) if isinstance(id_number, str) else ""
        if not value or value == normalise(ERASED):
            return None
        return str(self.term("w:" + value))

    def query_terms(self, q: str) -> tuple[int, list[int]]:
        """For a query: the whole-word term, and the gram terms all of which must match."""
        value = normalise(q)
        whole = self.term("w:" + value)
        if len(value) <= 1:
            return whole, [self.term("g:" + value)] if value else []
        head = value[:QUERY_GRAM_CHARS]
        return whole, sorted({self.term("g:" + gram) for gram in pairs(head)})


def legacy_term_key(cipher_key: str | None) -> bytes:
    """The search terms' key before it was derived from the master key: from the cipher
    key if one is set, else a constant (a store without per-person keys or cipher key holds
    its people in the clear in its events anyway)."""
    if cipher_key:
        return hashlib.sha256(b"casetrail/search-terms\n" + cipher_key.encode()).digest()
    return b"casetrail/search-terms"


def normalise(text: str) -> str:
    """The form terms are made of, for index and query alike: NFKC, case-folded, single
    spaces, and Chinese in simplified characters (歐陽 and 欧阳 are one name to search)."""
    value = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return _simplified().convert(value) if not value.isascii() else value


@cache
def _simplified() -> opencc.OpenCC:
    """OpenCC's traditional-to-simplified table (loaded once, ~80 ms)."""
    return opencc.OpenCC("t2s")


def pairs(value: str) -> list[str]:
    return [value[i : i + 2] for i in range(len(value) - 1) if " " not in value[i : i + 2]]


def grams(value: str) -> set[str]:
    """Single characters and character pairs (the unit of Chinese name search)."""
    return {ch for ch in value if ch != " "} | set(pairs(value))
