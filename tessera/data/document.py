"""The one record every reader yields and every index stores."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any


def id_problem(doc_id: str) -> str | None:
    """Why `doc_id` cannot be a document id, or None. An id is one line of an index's
    `docids.txt` and one field of a TSV qrels row, so line breaks (every one `str.splitlines`
    splits at), tabs and other control characters are refused; spaces are allowed."""
    if not doc_id.strip():
        return "is empty"
    if doc_id.isprintable():  # the common case, in C: every id is checked by a reader and the doc store
        return None
    for char in doc_id:
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            return f"id {doc_id!r} holds the control character U+{ord(char):04X}: an id is one line of text"
    return text_problem(doc_id)


def text_problem(text: str) -> str | None:
    """Why `text` is not text, or None: a lone UTF-16 surrogate (JSON's `\\ud800` unpaired, or a
    command-line argument that was not UTF-8) cannot be encoded, so no tokenizer, index or
    response can take it."""
    try:
        text.encode("utf-8")  # in C: every query of every search passes here
    except UnicodeEncodeError as exc:
        bad = ord(text[exc.start])
        return f"holds U+{bad:04X}, a lone surrogate: not valid Unicode text (was it UTF-8?)"
    return None


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    text: str
    title: str = ""
    # Where the record came from, so later stages (duplicate ids, encoding) can name it.
    file: str | None = None
    line: int | None = None
    # Flat JSON fields that filters select by (data/metadata.py); empty when the corpus has none.
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)
    # A folder file's size and modification time when it was read (data/files.py: `file_stamp`),
    # so a sync can pass over files that have not changed without reading them again.
    stamp: str | None = None

    @property
    def contents(self) -> str:
        """What encoders see: title and body, the way BEIR and pyserini users index them."""
        return f"{self.title} {self.text}" if self.title else self.text
