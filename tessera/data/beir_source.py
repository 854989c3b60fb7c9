"""A judged BEIR folder read whole and checked: the source of a long-document task.

Every judged query and document must exist (an error names the qrels file, line and field);
a document's member text is its text, preceded by its title when the text does not already
start with it (Cranfield's texts repeat their titles).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from tessera import config
from tessera.data.datasets import Qrels, read_beir_qrels
from tessera.data.readers import read_jsonl
from tessera.errors import DatasetError


@dataclass(frozen=True)
class BeirSource:
    """A judged BEIR folder in memory: member texts and every split's judgments."""

    folder: Path
    docs: dict[str, str]  # id -> member text, in corpus order
    queries: dict[str, str]
    splits: dict[str, Qrels]  # split name (file stem) -> judgments, splits sorted by name


def member_text(title: str, text: str) -> str:
    """The text a document contributes to a long document (see the module docstring)."""
    if title and not text.startswith(title):
        return f"{title}\n{text}"
    return text


def resolve_folder(spec: str | Path) -> Path:
    """A folder path, or `NAME-beir` / `NAME` in TESSERA_DATA_DIR (the BEIR copy first: the
    shared data keeps a collection's originals in `NAME` and its BEIR copy in `NAME-beir`)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise DatasetError("is a file, expected a BEIR folder", file=path, field="folder")
    where = config.data_dir()
    candidates = [] if Path(spec).is_absolute() else [where / f"{spec}-beir", where / str(spec)]
    for local in candidates:
        if (local / "corpus.jsonl").is_file():
            return local
    for local in candidates:  # `lisa`: the originals, not a BEIR copy
        if local.is_dir():
            why = f"'{local}' in TESSERA_DATA_DIR is not a BEIR folder (no corpus.jsonl)"
            raise DatasetError(why, file=path, field="folder")
    missing = "" if where.is_dir() else f"; the data folder '{where}' does not exist"
    raise DatasetError(f"no such folder (nor in TESSERA_DATA_DIR){missing}", file=path, field="folder")


def _first_line(path: Path, column: int, value: str) -> int | None:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if len(row) > column and row[column] == value:
                return number
    return None


def read_beir_source(spec: str | Path) -> BeirSource:
    """Read a BEIR folder with judgments; every judged query and document must exist."""
    folder = resolve_folder(spec)
    for name in ("corpus.jsonl", "queries.jsonl"):
        if not (folder / name).is_file():
            raise DatasetError(
                f"missing: not a BEIR folder (needs corpus.jsonl, queries.jsonl and qrels/*.tsv) in {folder}",
                file=folder / name,
                field="folder",
            )
    qrels_dir = folder / "qrels"
    files = sorted(qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []
    if not files:
        raise DatasetError(
            "no judgments: expected qrels/train.tsv and qrels/test.tsv", file=qrels_dir, field="qrels"
        )
    docs: dict[str, str] = {}
    for doc in read_jsonl(folder / "corpus.jsonl"):
        if doc.id in docs:
            raise DatasetError(
                f"duplicate document id '{doc.id}'", file=folder / "corpus.jsonl", line=doc.line, field="_id"
            )
        docs[doc.id] = member_text(doc.title, doc.text)
    queries = {doc.id: doc.text for doc in read_jsonl(folder / "queries.jsonl")}
    splits: dict[str, Qrels] = {}
    for path in files:
        qrels = read_beir_qrels(path)
        for query_id, judged in qrels.items():
            checks = [(query_id, 0, queries, "query", "queries.jsonl", "query-id")]
            checks += [(doc_id, 1, docs, "document", "corpus.jsonl", "corpus-id") for doc_id in judged]
            for value, column, known, what, where, field in checks:
                if value not in known:
                    raise DatasetError(
                        f"judged {what} '{value}' is not in {where}",
                        file=path,
                        line=_first_line(path, column, value),
                        field=field,
                    )
        splits[path.stem] = qrels
    return BeirSource(folder, docs, queries, splits)
