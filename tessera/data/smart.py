"""Streaming parsers for the original files of the Glasgow test collections.

ir_datasets ships Cranfield but not CISI, MEDLINE or LISA, so these read the files exactly as the
Glasgow IR group distributes them (CRLF line endings kept, nothing pre-processed). Two layouts:

- SMART (CISI.ALL, CISI.QRY, MED.ALL, MED.QRY): a record starts with `.I <id>`; each field marker
  (`.T` `.A` `.W` `.X` `.B` `.K` `.C` `.N`) owns the lines up to the next marker.
- LISA: `Document N` records split over LISA0.001 ... LISA5.850, queries ending in ` #`, and the
  judgements in LISARJ.NUM.

Every field is normalised the same way: lines right-stripped, joined with "\\n", then stripped.
Ids are numeric in every file; they are written without leading zeros so that judgement ids and
document/query ids always agree. Malformed input raises `CorpusError` with file, line and field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from tessera.data.readers import decode_line
from tessera.errors import CorpusError

SMART_FIELDS = frozenset("ITAWXBKCN")
LISA_DOC_GLOB = "LISA[0-9].[0-9][0-9][0-9]"

_MARKER = re.compile(r"\.([A-Z])(?:\s+(.*))?")
_LISA_HEADER = re.compile(r"Document\s+(\S+)")
_LISA_SEPARATOR = re.compile(r"\*{10,}")


class TitledDoc(NamedTuple):
    """A document with a separate title, shaped like ir_datasets' own document classes."""

    doc_id: str
    title: str
    text: str

    def default_text(self) -> str:
        """title + text, as ir_datasets' Cranfield does."""
        return f"{self.title} {self.text}"


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line without its CR/LF ending), decoding each line so errors name it."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield number, decode_line(raw, number).rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise CorpusError(
                    f"not valid UTF-8 (byte {exc.start} of the line)", file=path, line=number
                ) from None


def _join(lines: Iterable[str]) -> str:
    return "\n".join(line.rstrip() for line in lines).strip()


def _parse_id(token: str, path: Path, line: int, field: str) -> str:
    """A numeric id without leading zeros ('007' and '7' must name the same record)."""
    if not (token.isascii() and token.isdigit()):
        raise CorpusError(
            f"id must be a non-negative integer, got {token!r}", file=path, line=line, field=field
        )
    return str(int(token))


# --- SMART ---------------------------------------------------------------------------------------


def _smart_records(path: Path) -> Iterator[tuple[str, dict[str, list[str]]]]:
    """(id, {field letter: lines}) per `.I` record; a repeated marker (several `.A`) extends its field."""
    record_id: str | None = None
    fields: dict[str, list[str]] = {}
    current: list[str] | None = None
    seen: set[str] = set()
    for number, line in _lines(path):
        marker = _MARKER.fullmatch(line.rstrip())
        if marker and marker.group(1) not in SMART_FIELDS:
            raise CorpusError(f"unknown field marker .{marker.group(1)}", file=path, line=number)
        if marker and marker.group(1) == "I":
            if record_id is not None:
                yield record_id, fields
            record_id = _parse_id(marker.group(2) or "", path, number, ".I")
            if record_id in seen:
                raise CorpusError(f"duplicate id {record_id}", file=path, line=number, field=".I")
            seen.add(record_id)
            fields, current = {}, None
        elif marker:
            if record_id is None:
                raise CorpusError(f".{marker.group(1)} before the first .I record", file=path, line=number)
            current = fields.setdefault(marker.group(1), [])
            current.append(marker.group(2) or "")
        elif current is not None:
            current.append(line)
        elif line.strip():
            where = "the first .I record" if record_id is None else "the first field marker"
            raise CorpusError(f"text before {where}", file=path, line=number)
    if record_id is not None:
        yield record_id, fields


def read_smart_docs(path: Path) -> Iterator[TitledDoc]:
    """Documents of a SMART file: title = .T, text = .W; the other fields are dropped."""
    for doc_id, fields in _smart_records(path):
        yield TitledDoc(doc_id, _join(fields.get("T", [])), _join(fields.get("W", [])))


def read_smart_queries(path: Path) -> Iterator[tuple[str, str]]:
    """(query id, text) where text is the .W field, preceded by the .T title and a newline if any."""
    for query_id, fields in _smart_records(path):
        parts = (_join(fields.get("T", [])), _join(fields.get("W", [])))
        yield query_id, "\n".join(part for part in parts if part)


def _read_pairs(path: Path, layout: tuple[str | float, ...]) -> Iterator[tuple[str, str]]:
    """(query id, doc id) per line; `layout` names the id columns and the constant placeholders."""
    for number, line in _lines(path):
        columns = line.split()
        if not columns:
            continue
        if len(columns) != len(layout):
            raise CorpusError(f"expected {len(layout)} columns, got {len(columns)}", file=path, line=number)
        ids: dict[str, str] = {}
        for index, (expected, value) in enumerate(zip(layout, columns, strict=True), start=1):
            if isinstance(expected, str):
                ids[expected] = _parse_id(value, path, number, expected)
            elif _as_float(value) != expected:
                raise CorpusError(
                    f"expected {expected:g}, got {value!r} (not this file's layout?)",
                    file=path,
                    line=number,
                    field=f"column {index}",
                )
        yield ids["query_id"], ids["doc_id"]


def _as_float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def read_cisi_qrels(path: Path) -> Iterator[tuple[str, str]]:
    """CISI.REL: `qid docid 0 0.000000`; every listed pair is relevant."""
    return _read_pairs(path, ("query_id", "doc_id", 0.0, 0.0))


def read_cacm_qrels(path: Path) -> Iterator[tuple[str, str]]:
    """CACM qrels.text: `qid docid 0 0`, ids zero-padded; every listed pair is relevant."""
    return _read_pairs(path, ("query_id", "doc_id", 0.0, 0.0))


def read_medline_qrels(path: Path) -> Iterator[tuple[str, str]]:
    """MED.REL: `qid 0 docid 1`; every listed pair is relevant."""
    return _read_pairs(path, ("query_id", 0.0, "doc_id", 1.0))


# --- LISA ----------------------------------------------------------------------------------------


def lisa_doc_files(folder: Path) -> list[Path]:
    """LISA0.001 ... LISA5.850 in name order, the order they must be concatenated in."""
    return sorted(folder.glob(LISA_DOC_GLOB))


def _lisa_doc(doc_id: str, body: list[str]) -> TitledDoc:
    """Title = the lines before the first blank line, text = the rest."""
    blank = next((i for i, line in enumerate(body) if not line.strip()), len(body))
    return TitledDoc(doc_id, _join(body[:blank]), _join(body[blank + 1 :]))


def _lisa_records(paths: Sequence[Path]) -> Iterator[tuple[str, list[str]]]:
    """(id, body lines) per `Document N` record, duplicates included; a header or a separator ends one.

    Lines between a separator and the next header belong to no record and are skipped (the files
    hold one such fragment); text before the very first header is an error.
    """
    record: tuple[str, list[str]] | None = None
    started = False
    for path in paths:
        for number, line in _lines(path):
            header = _LISA_HEADER.fullmatch(line.rstrip())
            if header or _LISA_SEPARATOR.fullmatch(line.strip()):
                if record is not None:
                    yield record
                record = None
                if header:
                    record, started = (_parse_id(header.group(1), path, number, "Document"), []), True
            elif record is not None:
                record[1].append(line)
            elif line.strip() and not started:
                raise CorpusError("text before the first 'Document N' header", file=path, line=number)
    if record is not None:
        yield record


def read_lisa_docs(paths: Sequence[Path]) -> Iterator[TitledDoc]:
    """Documents of the LISA files read as one stream: `Document N`, title, blank line, text, `****`.

    The distributed files have three known defects, handled here:
    - ids 1998-2001 appear twice (LISA1.501 repeats them, identically): the first occurrence is
      kept and later records with an already-seen id are skipped (6,003 records, 5,999 docs);
    - ids 1993-1997 are absent;
    - after the first copy of 2001 comes a 7-line fragment with no `Document` header (the tail of a
      lost record, also spliced into the text of 1992); it belongs to no record and is skipped.
    """
    seen: set[str] = set()
    for doc_id, body in _lisa_records(paths):
        if doc_id not in seen:
            seen.add(doc_id)
            yield _lisa_doc(doc_id, body)


def read_lisa_queries(path: Path) -> Iterator[tuple[str, str]]:
    """LISA.QUE: a line with the query number, then text lines up to one ending in `#` (dropped)."""
    query: tuple[str, int, list[str]] | None = None
    seen: set[str] = set()
    for number, line in _lines(path):
        stripped = line.rstrip()
        if query is None:
            if not stripped:
                continue
            query_id = _parse_id(stripped.strip(), path, number, "query number")
            if query_id in seen:
                raise CorpusError(f"duplicate query {query_id}", file=path, line=number)
            seen.add(query_id)
            query = (query_id, number, [])
        elif stripped.endswith("#"):
            query[2].append(stripped[:-1])
            yield query[0], _join(query[2])
            query = None
        else:
            query[2].append(line)
    if query is not None:
        raise CorpusError(f"query {query[0]} does not end with '#'", file=path, line=query[1])


def read_lisa_qrels(path: Path) -> Iterator[tuple[str, str]]:
    """LISARJ.NUM: query id, count, then `count` doc ids, whitespace-separated over any number of lines."""
    tokens = ((number, token) for number, line in _lines(path) for token in line.split())
    for number, token in tokens:
        query_id = _parse_id(token, path, number, "query id")
        line, count = next(tokens, (number, None))
        if count is None:
            raise CorpusError(f"query {query_id} has no count of judged documents", file=path, line=line)
        for _ in range(int(_parse_id(count, path, line, "count"))):
            line, doc = next(tokens, (line, None))
            if doc is None:
                raise CorpusError(
                    f"query {query_id} lists fewer documents than its count", file=path, line=line
                )
            yield query_id, _parse_id(doc, path, line, "doc id")
