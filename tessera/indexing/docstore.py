"""SQLite document store: raw title, text and metadata by id, and the ordinal every backend uses."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tessera.data.document import Document, id_problem
from tessera.errors import CorpusError, IndexFormatError
from tessera.indexing.filter_sql import filter_sql

SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    ordinal INTEGER PRIMARY KEY,   -- position in the build order = the faiss label
    id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    source TEXT,                   -- file:line the record came from, for error messages
    metadata TEXT,                 -- JSON object, NULL when the document has none
    stamp TEXT                     -- a folder file's size:mtime_ns when read (sync's quick check)
)
"""
COLUMNS = "ordinal, id, title, text, source, metadata, stamp"
LATER_COLUMNS = ("metadata", "stamp")  # added since the first format: stores without them still open


class DocStore:
    FILE = "docstore.sqlite"

    def __init__(self, path: Path, readonly: bool = False):
        self.path = path
        if readonly and not path.is_file():
            raise IndexFormatError("the index's document store is missing", file=path)
        try:
            self._open(readonly)
        except sqlite3.DatabaseError as exc:  # a damaged or foreign file, found before any search
            raise IndexFormatError(f"not a readable document store (sqlite: {exc})", file=path) from None

    def _open(self, readonly: bool) -> None:
        uri = f"file:{self.path}?mode=ro" if readonly else f"file:{self.path}"
        self.db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        if not readonly:
            self.db.execute("PRAGMA journal_mode=DELETE")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute(SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(docs)")}
        missing = [name for name in LATER_COLUMNS if columns and name not in columns]
        if missing and readonly:  # a store written before them: read as NULL
            nulls = ", ".join(f"NULL AS {name}" for name in missing)
            self.db.execute(f"CREATE TEMP VIEW docs AS SELECT *, {nulls} FROM main.docs")
        for name in missing if not readonly else ():
            self.db.execute(f"ALTER TABLE docs ADD COLUMN {name} TEXT")

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM docs").fetchone()[0]

    def add(self, start: int, documents: Sequence[Document], stored: int = 0) -> None:
        """Insert one batch in one transaction; a duplicate id names both records, an id no index
        file can hold (`id_problem`) names its record. `stored`: the ordinals below it were in
        the index before (an update's), so a clash with one is an id already in the index."""
        for doc in documents:
            if problem := id_problem(doc.id):
                raise CorpusError(problem, file=doc.file, line=doc.line, field="_id")
        with self.db:
            for offset, doc in enumerate(documents):
                source = f"{doc.file}:{doc.line}" if doc.file else None
                metadata = json.dumps(doc.metadata, ensure_ascii=False) if doc.metadata else None
                try:
                    self.db.execute(
                        f"INSERT INTO docs ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (start + offset, doc.id, doc.title, doc.text, source, metadata, doc.stamp),
                    )
                except sqlite3.IntegrityError:
                    source, ordinal = self.db.execute(
                        "SELECT source, ordinal FROM docs WHERE id = ?", (doc.id,)
                    ).fetchone()
                    known = f" (from {source})" if _exists(source) else ""
                    problem = (
                        f"document id '{doc.id}' is already in the index{known}"
                        if ordinal < stored
                        else f"duplicate document id '{doc.id}'" + (f" (first at {source})" if known else "")
                    )
                    raise CorpusError(problem, file=doc.file, line=doc.line, field="_id") from None

    def truncate(self, count: int) -> None:
        """Drop rows past `count`: a resumed build rewinds to its last checkpoint."""
        with self.db:
            self.db.execute("DELETE FROM docs WHERE ordinal >= ?", (count,))

    def ordinals(self, ids: Iterable[str]) -> dict[str, int]:
        """The ordinal (= vector label) of each stored id; ids not stored are left out."""
        return dict(self._where_ids("id, ordinal", ids))

    def delete(self, ordinals: Iterable[int]) -> None:
        with self.db:
            self.db.executemany("DELETE FROM docs WHERE ordinal = ?", ((int(o),) for o in ordinals))

    def renumber(self) -> None:
        """Ordinals 0..n-1 in the stored order, as after a build (labels of a compacted backend)."""
        with self.db:
            self.db.execute(SCHEMA.replace("EXISTS docs (", "EXISTS docs_renumbered ("))
            self.db.execute(
                f"INSERT INTO docs_renumbered ({COLUMNS}) SELECT ROW_NUMBER() OVER (ORDER BY ordinal) - 1, "
                f"{COLUMNS.split(', ', 1)[1]} FROM docs"
            )
            self.db.execute("DROP TABLE docs")
            self.db.execute("ALTER TABLE docs_renumbered RENAME TO docs")
        self.db.execute("VACUUM")

    def ids(self, start: int = 0) -> Iterator[str]:
        """Ids in ordinal order (from ordinal `start`: the documents an update just added)."""
        for (doc_id,) in self.db.execute("SELECT id FROM docs WHERE ordinal >= ? ORDER BY ordinal", (start,)):
            yield doc_id

    def documents(self) -> Iterator[Document]:
        for row in self.db.execute("SELECT id, title, text, metadata, stamp FROM docs ORDER BY ordinal"):
            yield _document(*row)

    def get(self, ids: Iterable[str]) -> dict[str, Document]:
        return {row[0]: _document(*row) for row in self._where_ids("id, title, text, metadata, stamp", ids)}

    def stamps(self, ids: Iterable[str]) -> dict[str, str]:
        """The stamp of each stored id that has one (data/files.py: `file_stamp`)."""
        return {doc_id: stamp for doc_id, stamp in self._where_ids("id, stamp", ids) if stamp is not None}

    def set_stamps(self, stamps: Mapping[str, str]) -> None:
        """Record files read again and found unchanged, so the next sync need not read them."""
        with self.db:
            self.db.executemany("UPDATE docs SET stamp = ? WHERE id = ?", ((v, k) for k, v in stamps.items()))

    def empty(self, start: int = 0) -> tuple[int, list[str]]:
        """How many documents from ordinal `start` have neither title nor text, and where the
        first few came from (`file:line`, else their ids)."""
        blank = "trim(title, ' \t\r\n') = '' AND trim(text, ' \t\r\n') = ''"
        where = f"ordinal >= ? AND {blank}"
        (count,) = self.db.execute(f"SELECT COUNT(*) FROM docs WHERE {where}", (start,)).fetchone()
        rows = self.db.execute(f"SELECT coalesce(source, id) FROM docs WHERE {where} LIMIT 3", (start,))
        return count, [row[0] for row in rows]

    def matching(self, metadata_filter: Mapping[str, Any]) -> set[str]:
        """Ids of the documents a checked filter (data/metadata.parse_filter) selects."""
        where, values = filter_sql(metadata_filter)
        return {doc_id for (doc_id,) in self.db.execute(f"SELECT id FROM docs WHERE {where}", values)}

    def metadata_fields(self) -> dict[str, int]:
        """Each metadata key and how many documents carry it, commonest first (one scan)."""
        rows = self.db.execute(
            "SELECT key, count(*) FROM docs, json_each(docs.metadata) WHERE docs.metadata IS NOT NULL "
            "GROUP BY key ORDER BY count(*) DESC, key"
        )
        return dict(rows)

    def _where_ids(self, columns: str, ids: Iterable[str]) -> Iterator[tuple]:
        """`columns` of the rows whose id is in `ids` (unique), 500 ids per query (SQLite's
        parameter limit)."""
        wanted = list(dict.fromkeys(ids))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            yield from self.db.execute(f"SELECT {columns} FROM docs WHERE id IN ({marks})", chunk)

    def close(self) -> None:
        self.db.close()


def _document(doc_id: str, title: str, text: str, metadata: str | None, stamp: str | None) -> Document:
    return Document(
        id=doc_id, title=title, text=text, metadata=json.loads(metadata) if metadata else {}, stamp=stamp
    )


def _exists(source: str | None) -> bool:
    """Whether a stored `FILE:LINE` source names a file still there (not the temporary corpus
    file of an add from memory, a service request or a sync)."""
    return bool(source) and Path(source.rsplit(":", 1)[0]).is_file()
