"""Passages of long documents for `index --chunk TOKENS[:OVERLAP]`, and the passage -> document map.

A document is cut into windows of its body's wordpieces under the encoder's own tokenizer, so
every passage fits the encoder's input exactly. The budget TOKENS counts the whole encoder input:
special tokens and the title (which every passage repeats, the way MaxP systems give each passage
its document's title) come out of it, so `--chunk 256` fills MiniLM's 256-token window. A title
takes at most a quarter of it (a longer one is cut for the encoder: a 66-word title left the body
so few wordpieces that one document became 1,066 passages, and one longer than the window left
the encoder none of the body). Neighbouring windows share OVERLAP wordpieces. Passage offsets are
character offsets into the document's text (not its title), so a hit can point at the passage
inside the stored document.

The map is `passages.npy` (int64, one row per vector: document ordinal, char start, char end);
scoring a document by its best passage (MaxP) lives in `tessera.retrieval.maxp`.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tessera.data.document import Document
from tessera.errors import IndexFormatError, TesseraError
from tessera.indexing.manifest import MANIFEST, Manifest

PASSAGES = "passages.npy"
PARTIAL_PASSAGES = "passages.i64.partial"
# The passage size `--chunk` is suggested with (a quarter of it overlapping): 128:32 ranked long
# documents best with MiniLM on two collections and held on two others (results section 35).
SUGGESTED_TOKENS = 128


@dataclass(frozen=True)
class Chunking:
    tokens: int
    overlap: int = 0

    @classmethod
    def parse(cls, text: str) -> Chunking:
        """`TOKENS` or `TOKENS:OVERLAP`, e.g. `256` or `256:32`."""
        size, _, overlap = text.partition(":")
        try:
            chunking = cls(int(size), int(overlap or 0))
        except ValueError:
            raise TesseraError(f"'{text}' is not TOKENS or TOKENS:OVERLAP", field="chunk") from None
        if chunking.tokens < 8:
            raise TesseraError(f"passages need at least 8 tokens, got {chunking.tokens}", field="chunk")
        if not 0 <= chunking.overlap < chunking.tokens // 2:
            raise TesseraError(
                f"overlap must be at least 0 and under half the passage ({chunking.tokens // 2}), "
                f"got {chunking.overlap}",
                field="chunk",
            )
        return chunking

    @property
    def spec(self) -> str:
        return f"{self.tokens}:{self.overlap}"

    @classmethod
    def suggested(cls, window: int) -> Chunking:
        """What a build that cut documents short suggests for an encoder reading `window` tokens."""
        tokens = max(8, min(window, SUGGESTED_TOKENS))
        return cls(tokens, tokens // 4)


class PassageSplitter:
    """Cuts documents into passages with one encoder's tokenizer (a Hugging Face fast tokenizer)."""

    def __init__(self, chunking: Chunking, tokenizer: Any, max_tokens: int):
        if chunking.tokens > max_tokens:
            raise TesseraError(
                f"passages of {chunking.tokens} tokens exceed the encoder's input of {max_tokens} tokens",
                field="chunk",
            )
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise TesseraError("--chunk needs an encoder with a fast (Rust) tokenizer", field="chunk")
        self.backend = copy.deepcopy(backend)
        self.backend.no_truncation()
        self.backend.no_padding()
        self.chunking = chunking
        self.specials = int(tokenizer.num_special_tokens_to_add(pair=False))

    def _encode(self, texts: list[str]) -> list[Any]:
        return self.backend.encode_batch(texts, add_special_tokens=False)

    def _title_tokens(self, title: Any) -> int:
        """How many of a title's wordpieces each passage carries: at most a quarter of the window
        (the body keeps three quarters, more than twice the overlap)."""
        room = self.chunking.tokens - self.specials
        return min(len(title.ids), room // 4)

    def spans(self, documents: Sequence[Document]) -> list[list[tuple[int, int]]]:
        """Character spans of each document's passages in its text; an empty text is one empty span."""
        bodies = self._encode([doc.text for doc in documents])
        titles = self._encode([doc.title or "" for doc in documents])
        out = []
        for body, title in zip(bodies, titles, strict=True):
            budget = self.chunking.tokens - self.specials - self._title_tokens(title)
            windows = word_windows(body.word_ids, budget, self.chunking.overlap)
            out.append([(body.offsets[a][0], body.offsets[b - 1][1]) for a, b in windows] or [(0, 0)])
        return out

    def texts(self, documents: Sequence[Document], spans: Sequence[Sequence[tuple[int, int]]]) -> list[str]:
        """What the encoder reads for each passage, in order: the title (cut as `spans` counted
        it) and the passage's text."""
        titles = self._encode([doc.title or "" for doc in documents])
        out = []
        for doc, title, row in zip(documents, titles, spans, strict=True):
            kept = self._title_tokens(title)
            head = doc.title[: title.offsets[kept - 1][1]] if kept else ""
            out += [f"{head} {doc.text[start:end]}" if head else doc.text[start:end] for start, end in row]
        return out


def word_windows(words: Sequence[int | None], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Token windows [start, end) of at most `budget` tokens that start and end on word
    boundaries (a word cut in two would re-tokenize into other, often more, wordpieces),
    sharing about `overlap` tokens (rounded back to a word start); a word longer than the
    whole window is the only thing cut."""

    def word_start(i: int) -> int:
        while i > 0 and words[i] is not None and words[i] == words[i - 1]:
            i -= 1
        return i

    windows, start, n = [], 0, len(words)
    while start < n:
        end = min(start + budget, n)
        if end < n and word_start(end) > start:
            end = word_start(end)
        windows.append((start, end))
        if end == n:
            break
        following = word_start(max(end - overlap, start + 1))
        start = following if following > start else end
    return windows


def beyond_window(model, documents: Iterable[Document], batch: int = 1000) -> tuple[int, int, int]:
    """(documents longer than the encoder's input window, documents, the window): what a build
    without `--chunk` cuts short. (0, 0, 0) for an encoder without a tokenizer and a window."""
    tokenizer, window = getattr(model, "tokenizer", None), getattr(model, "max_tokens", None)
    if tokenizer is None or not window:
        return 0, 0, 0
    longer = total = 0
    pending: list[str] = []
    for doc in documents:
        pending.append(doc.contents)
        if len(pending) == batch:
            longer += sum(len(ids) > window for ids in tokenizer(pending, verbose=False)["input_ids"])
            total, pending = total + len(pending), []
    if pending:
        longer += sum(len(ids) > window for ids in tokenizer(pending, verbose=False)["input_ids"])
        total += len(pending)
    return longer, total, int(window)


class PassageMap:
    """Rows of (document ordinal, char start, char end), appended per batch beside the vectors."""

    def __init__(self, root: Path):
        self.partial = root / PARTIAL_PASSAGES

    def rewind(self, done_docs: int) -> int:
        """Drop passages of documents past the checkpoint; return how many passages remain."""
        if not self.partial.exists():
            return 0
        rows = np.fromfile(self.partial, dtype=np.int64).reshape(-1, 3)
        keep = int(np.searchsorted(rows[:, 0], done_docs, side="left"))
        with self.partial.open("r+b") as handle:
            handle.truncate(keep * 3 * 8)
        return keep

    def append(self, first_doc: int, spans: list[list[tuple[int, int]]]) -> None:
        rows = [(first_doc + i, start, end) for i, doc_spans in enumerate(spans) for start, end in doc_spans]
        with self.partial.open("ab") as handle:
            handle.write(np.asarray(rows, dtype=np.int64).reshape(-1, 3).tobytes())
            handle.flush()
            os.fsync(handle.fileno())

    def finish(self) -> int:
        """Publish the map as `passages.npy`; return the passage count."""
        rows = np.fromfile(self.partial, dtype=np.int64).reshape(-1, 3)
        np.save(self.partial.with_name(PASSAGES), rows)
        self.partial.unlink()
        return len(rows)


def load_passages(root: Path, passages: int, documents: int) -> np.ndarray:
    """The map of a chunked index, checked against the manifest's counts (no pickles)."""
    path = root / PASSAGES
    try:
        rows = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise IndexFormatError(f"cannot read the passage map: {exc}", file=path) from None
    if rows.ndim != 2 or rows.shape != (passages, 3) or rows.dtype != np.int64:
        raise IndexFormatError(
            f"passage map has shape {rows.shape} ({rows.dtype}); manifest says {passages} passages",
            file=path,
        )
    if passages and (rows[:, 0].min() < 0 or rows[:, 0].max() >= documents):
        raise IndexFormatError(f"passage map names documents outside 0..{documents - 1}", file=path)
    return rows


def refuse_chunked(manifest: Manifest, root: Path, command: str) -> None:
    """Trainers that map one vector to one document cannot take a passage index (yet)."""
    if manifest.chunking:
        raise TesseraError(
            f"{command} trains on one vector per document; this index holds passages "
            f"(--chunk {manifest.chunking['tokens']}:{manifest.chunking['overlap']}): "
            "build it without --chunk",
            file=root / MANIFEST,
            field="chunking",
        )
