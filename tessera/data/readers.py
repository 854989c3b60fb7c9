"""Streaming readers for every corpus format Tessera accepts.

Each reader yields `Document`s one at a time (a corpus is never held in memory) and
raises `CorpusError` naming the file, the line and the field of the first bad record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from tessera.data.document import Document, id_problem
from tessera.data.metadata import check_metadata, filterable
from tessera.errors import CorpusError

ID_FIELDS = ("_id", "id", "docid", "doc_id")
TEXT_FIELDS = ("text", "contents")


def decode_line(raw: bytes, line: int) -> str:
    """Line `line` (from 1) of a user's UTF-8 file as text; a byte-order mark opening the file
    (Excel, Notepad) is dropped. Raises UnicodeDecodeError for the caller to locate."""
    return raw.decode("utf-8-sig" if line == 1 else "utf-8")


def _decode(raw: bytes, path: Path, line: int) -> str:
    try:
        return decode_line(raw, line)
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"not valid UTF-8 (byte {exc.start} of the line: {raw[exc.start : exc.start + 4]!r})",
            file=path,
            line=line,
        ) from None


def text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of every line of a user's UTF-8 file, newline kept; a line that is
    not UTF-8 is an error naming the file and the line."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            yield number, _decode(raw, path, number)


def _string_field(record: dict, names: tuple[str, ...], path: Path, line: int, required: bool) -> str:
    for name in names:
        if name in record:
            value = record[name]
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise CorpusError(
                    f"must be a string, got {type(value).__name__}", file=path, line=line, field=name
                )
            return str(value)
    if required:
        raise CorpusError(
            f"missing (expected one of {', '.join(names)})", file=path, line=line, field=names[0]
        )
    return ""


def read_jsonl(path: Path) -> Iterator[Document]:
    """JSON Lines with `_id`/`id`, optional `title`, and `text` (or pyserini's `contents`)."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = _decode(raw, path, number).strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(
                    f"malformed JSON at column {exc.colno}: {exc.msg}", file=path, line=number
                ) from None
            if not isinstance(record, dict):
                raise CorpusError(
                    f"expected a JSON object, got {type(record).__name__}", file=path, line=number
                )
            doc_id = _string_field(record, ID_FIELDS, path, number, required=True)
            if problem := id_problem(doc_id):
                raise CorpusError(problem, file=path, line=number, field="_id")
            text = _string_field(record, TEXT_FIELDS, path, number, required=True)
            title = _string_field(record, ("title",), path, number, required=False)
            metadata = _metadata(record, path, number)
            yield Document(id=doc_id, text=text, title=title, file=str(path), line=number, metadata=metadata)


def _metadata(record: dict, path: Path, line: int) -> dict:
    """BEIR's `metadata` object, plus every other top-level field with a scalar or list value
    (pyserini-style records: `{"id", "contents", "year"}`); nested values are not kept."""
    given = record.get("metadata")
    own = {} if given is None else check_metadata(given, path, line)
    for key, value in record.items():
        if key in (*ID_FIELDS, *TEXT_FIELDS, "title", "metadata") or not filterable(value):
            continue
        if key in own:
            raise CorpusError(
                "given both at the top level and in 'metadata'", file=path, line=line, field=key
            )
        own[key] = value
    return own


def read_tsv(path: Path) -> Iterator[Document]:
    """`id<TAB>text` (MS MARCO style) or `id<TAB>title<TAB>text`; a header row `id ...` is skipped."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = _decode(raw, path, number).rstrip("\r\n")
            if not line.strip():
                continue
            columns = line.split("\t")
            if number == 1 and columns[0].lower() in ID_FIELDS:
                continue
            if len(columns) == 2:
                doc_id, title, text = columns[0], "", columns[1]
            elif len(columns) == 3:
                doc_id, title, text = columns
            else:
                raise CorpusError(
                    f"expected 2 or 3 tab-separated columns (id, [title,] text), got {len(columns)}",
                    file=path,
                    line=number,
                    field="text" if len(columns) == 1 else None,
                )
            if problem := id_problem(doc_id):
                raise CorpusError(problem, file=path, line=number, field="id")
            yield Document(id=doc_id, text=text, title=title, file=str(path), line=number)


def _query_records(path: str | Path, field: str) -> list[Document]:
    file = Path(path).expanduser()
    if not file.is_file():
        raise CorpusError("no such file", file=file, field=field)
    suffix = file.suffix.lower()
    if suffix in (".jsonl", ".json"):
        records = list(read_jsonl(file))
    elif suffix in (".tsv", ".tab"):
        records = list(read_tsv(file))
    else:
        raise CorpusError("queries must be a .jsonl or .tsv file", file=file, field=field)
    if not records:
        raise CorpusError("has no queries", file=file, field=field)
    return records


def read_queries(path: str | Path, field: str = "queries") -> dict[str, str]:
    """Every query (id -> text) of a BEIR `queries.jsonl` (`_id`, `text`) or an `id<TAB>text` .tsv;
    an unknown format, an empty file, a repeated id or an empty query is an error naming the file
    and `field` (the option), or the line."""
    queries: dict[str, str] = {}
    for query in _query_records(path, field):
        if query.id in queries:
            raise CorpusError(f"query id '{query.id}' repeated", file=query.file, line=query.line, field="id")
        if not query.text.strip():
            raise CorpusError("the query is empty", file=query.file, line=query.line, field="text")
        queries[query.id] = query.text
    return queries


def read_query_texts(path: str | Path, field: str = "queries") -> list[str]:
    """Every query's text, in file order (ids unused: sample queries for tuning)."""
    return [query.text for query in _query_records(path, field)]
