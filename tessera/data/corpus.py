"""Resolve what the user names as a corpus into one streaming source of `Document`s.

A corpus is a BEIR folder (corpus.jsonl), a JSONL file, a TSV file, a folder of text,
Markdown, HTML and PDF files (or one such file), or an ir_datasets id (read offline from
`TESSERA_DATA_DIR`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tessera.data import irds
from tessera.data.document import Document
from tessera.data.files import FORMATS, folder_files, read_folder
from tessera.data.metadata import is_scalar
from tessera.data.readers import read_jsonl, read_tsv
from tessera.errors import CorpusError, DatasetError


@dataclass(frozen=True)
class Corpus:
    """A named, re-iterable stream of documents."""

    name: str
    kind: str
    _open: Callable[[], Iterator[Document]]
    size_hint: int | None = None
    # A folder of files (or one file): its root and the files read, which a sync looks at first.
    folder: tuple[Path, tuple[Path, ...]] | None = None
    # Records held in memory (`records_file`): the temporary file they are read from, which
    # `name` (what the manifest and messages show) is not.
    held: Path | None = None

    def __iter__(self) -> Iterator[Document]:
        return self._open()

    @property
    def fingerprint(self) -> str:
        """Identifies the input of a build, so a resumed build never mixes two corpora: the
        sizes and times of the files documents are read from (a BEIR folder's corpus.jsonl, not
        its queries, judgments or notes; a folder's readable files)."""
        path = Path(self.name)
        stamp = f"{self.kind}:{self.name}"
        if self.kind == "beir":
            files = [path / "corpus.jsonl"]
        elif self.folder is not None:
            files = sorted(self.folder[1])
        elif self.held is not None:
            files = [self.held]
        else:
            files = [path] if path.is_file() else []  # a JSONL or TSV file; an ir_datasets id: none
        stamp += "".join(f"|{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
        return hashlib.sha256(stamp.encode()).hexdigest()[:16]


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


def _irds_documents(dataset_id: str) -> Iterator[Document]:
    dataset = irds.load(dataset_id)
    if not dataset.has_docs():
        raise DatasetError(f"ir_datasets id '{dataset_id}' has no documents", field="corpus")
    with irds.offline_read(dataset_id, "corpus"):
        for doc in dataset.docs_iter():
            title = getattr(doc, "title", "") or ""
            text = doc.text if hasattr(doc, "text") else doc.default_text()
            yield Document(id=doc.doc_id, text=text, title=title, metadata=_irds_metadata(doc))


def _irds_metadata(doc: tuple) -> dict:
    """A record's other scalar fields (Cranfield's author and bib, a date, a url) as metadata."""
    fields = doc._asdict().items() if hasattr(doc, "_asdict") else ()
    return {
        key: value
        for key, value in fields
        if key not in ("doc_id", "title", "text") and value not in ("", None) and is_scalar(value)
    }


def open_corpus(spec: str | Path) -> Corpus:
    """Turn a path or an ir_datasets id into a `Corpus`; unknown specs raise a clear error."""
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        beir = path / "corpus.jsonl"
        if beir.is_file():
            return Corpus(str(path), "beir", lambda: read_jsonl(beir), _count_lines(beir))
        files = folder_files(path)
        if not files:
            raise CorpusError(
                f"folder has neither corpus.jsonl nor files Tessera reads ({', '.join(FORMATS)})", file=path
            )
        return Corpus(str(path), "files", lambda: read_folder(path, files), len(files), (path, tuple(files)))
    if path.is_file():
        held = _HELD.get(path.resolve())
        if held is not None:
            return Corpus(held, "records", lambda: _unplaced(read_jsonl(path)), _count_lines(path), held=path)
        suffix = path.suffix.lower()
        if suffix in FORMATS:  # one document: a report, a book, a paper (index it with --chunk)
            return Corpus(
                str(path), "files", lambda: read_folder(path.parent, [path]), 1, (path.parent, (path,))
            )
        if suffix in (".jsonl", ".json"):
            return Corpus(str(path), "jsonl", lambda: read_jsonl(path), _count_lines(path))
        if suffix in (".tsv", ".tab"):
            return Corpus(str(path), "tsv", lambda: read_tsv(path), _count_lines(path))
        raise CorpusError(
            f"unknown corpus format: expected .jsonl, .tsv, {', '.join(FORMATS)}, a folder or a dataset id",
            file=path,
        )
    if irds.is_known(text):
        dataset = irds.load(text)
        count = dataset.docs_count() if dataset.has_docs() else None
        return Corpus(text, "ir_datasets", lambda: _irds_documents(text), count)
    raise CorpusError(
        f"'{text}' is neither an existing file or folder nor a known ir_datasets id", field="corpus"
    )


_HELD: dict[Path, str] = {}  # `records_file`'s open temporary files, and the names they go by


def _unplaced(documents: Iterator[Document]) -> Iterator[Document]:
    """Records held in memory have no file and line: messages and the doc store name their ids,
    not a temporary file that is gone once they are added."""
    for doc in documents:
        yield replace(doc, file=None, line=None)


@contextmanager
def records_file(
    records: Iterable[Mapping[str, Any]], directory: Path, prefix: str, name: str = "records held in memory"
) -> Iterator[Path]:
    """Corpus records (`_id`, `title`, `text`, `metadata`) as a JSONL corpus in `directory` (beside
    the index: the same file system) while the block runs, removed afterwards: how documents held
    in memory (a service's request, a framework's add) reach the builder and the updater, which
    read corpora. Opened as a corpus, it goes by `name` (a manifest's `corpus`), and its
    documents by their ids."""
    handle, file = tempfile.mkstemp(prefix=prefix, suffix=".jsonl", dir=directory)
    path = Path(file)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        _HELD[path.resolve()] = name
        yield path
    finally:
        _HELD.pop(path.resolve(), None)
        path.unlink(missing_ok=True)
