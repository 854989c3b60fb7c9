"""LoCoV1 (`hazyresearch/LoCoV1-Queries` / `-Documents`) as BEIR folders.

LoCoV1 cannot be downloaded here; `read_loco` reads one task of a local export of it (JSONL
or Parquet files, or folders of them) and `write_loco` writes that task as a BEIR folder for
users who have it: every query in the `test` split (grade 1 for each answer pid), empty
titles, and `loco.json` for provenance. The folder is written beside the target and renamed
onto it, so the target is absent or complete.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tessera.data.beir_folder import durable_open, new_target, publish_folder, write_qrels
from tessera.data.datasets import Qrels
from tessera.data.document import id_problem
from tessera.data.readers import decode_line
from tessera.errors import DatasetError

LOCO_QUERY_COLUMNS = ("qid", "dataset", "query", "answer_pids")
LOCO_DOCUMENT_COLUMNS = ("pid", "dataset", "passage")


@dataclass(frozen=True)
class LocoTask:
    """One LoCoV1 task: its documents, its queries, grade 1 for each answer pid."""

    task: str
    documents: dict[str, str]
    queries: dict[str, str]
    qrels: Qrels


def _loco_rows(path: Path) -> Iterator[tuple[Path, int, dict]]:
    """(file, line or row number, record) for a JSONL or Parquet file, or every such file
    under a folder (a dataset snapshot, whose `.json` files are its metadata, not rows)."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in (".jsonl", ".parquet"))
        if not files:
            raise DatasetError("folder has no .jsonl or .parquet files", file=path)
    elif path.is_file():
        files = [path]
    else:
        raise DatasetError("no such file or folder", file=path)
    for file in files:
        if file.suffix.lower() == ".parquet":
            try:
                import pyarrow.parquet as pq
            except ImportError:
                raise DatasetError("reading Parquet needs the package pyarrow", file=file) from None
            number = 0
            for batch in pq.ParquetFile(file).iter_batches():
                for record in batch.to_pylist():
                    number += 1
                    yield file, number, record
            continue
        with file.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    line = decode_line(raw, number).strip()
                except UnicodeDecodeError:
                    raise DatasetError("not valid UTF-8", file=file, line=number) from None
                if not line:
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"malformed JSON: {exc.msg}", file=file, line=number) from None
                if not isinstance(record, dict):
                    raise DatasetError("expected a JSON object", file=file, line=number)
                yield file, number, record


def _loco_task_rows(path: Path, columns: tuple[str, ...], task: str) -> Iterator[tuple[Path, int, dict]]:
    seen: set[str] = set()
    matched = False
    for file, number, record in _loco_rows(path):
        for column in columns:
            if column not in record:
                raise DatasetError(
                    f"missing (LoCoV1 columns: {', '.join(columns)})", file=file, line=number, field=column
                )
        dataset = str(record["dataset"])
        seen.add(dataset)
        if dataset == task:
            matched = True
            yield file, number, record
    if not matched:
        raise DatasetError(
            f"no rows for task '{task}' (tasks present: {', '.join(sorted(seen)) or 'none'})",
            file=path,
            field="dataset",
        )


def _loco_id(value: object, file: Path, number: int, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise DatasetError(
            f"must be a non-empty string or integer, got {value!r}", file=file, line=number, field=field
        )
    if problem := id_problem(str(value)):  # the BEIR folder's ids must be ones an index takes
        raise DatasetError(problem, file=file, line=number, field=field)
    return str(value)


def _loco_text(value: object, file: Path, number: int, field: str) -> str:
    if not isinstance(value, str):
        raise DatasetError(
            f"must be a string, got {type(value).__name__}", file=file, line=number, field=field
        )
    return value


def read_loco(queries_path: str | Path, documents_path: str | Path, task: str) -> LocoTask:
    """Read one task of a local LoCoV1 export: `queries_path` with the columns of
    `hazyresearch/LoCoV1-Queries` (`qid`, `dataset`, `query`, `answer_pids`) and
    `documents_path` with those of `hazyresearch/LoCoV1-Documents` (`pid`, `dataset`,
    `passage`), each a JSONL or Parquet file or a folder of them; rows whose `dataset` is
    `task` are kept. Every answer pid must be a document of the task."""
    queries_path, documents_path = Path(queries_path).expanduser(), Path(documents_path).expanduser()
    documents: dict[str, str] = {}
    for file, number, record in _loco_task_rows(documents_path, LOCO_DOCUMENT_COLUMNS, task):
        pid = _loco_id(record["pid"], file, number, "pid")
        if pid in documents:
            raise DatasetError(f"duplicate pid '{pid}' in task '{task}'", file=file, line=number, field="pid")
        documents[pid] = _loco_text(record["passage"], file, number, "passage")
    queries: dict[str, str] = {}
    qrels: Qrels = {}
    for file, number, record in _loco_task_rows(queries_path, LOCO_QUERY_COLUMNS, task):
        qid = _loco_id(record["qid"], file, number, "qid")
        if qid in queries:
            raise DatasetError(f"duplicate qid '{qid}' in task '{task}'", file=file, line=number, field="qid")
        queries[qid] = _loco_text(record["query"], file, number, "query")
        answers = record["answer_pids"]
        if isinstance(answers, (str, int)) and not isinstance(answers, bool):
            answers = [answers]
        if not isinstance(answers, (list, tuple)):
            raise DatasetError(
                f"must be a list of pids, got {type(answers).__name__}",
                file=file,
                line=number,
                field="answer_pids",
            )
        for answer in answers:
            pid = _loco_id(answer, file, number, "answer_pids")
            if pid not in documents:
                raise DatasetError(
                    f"pid '{pid}' is not a document of task '{task}'",
                    file=file,
                    line=number,
                    field="answer_pids",
                )
            qrels.setdefault(qid, {})[pid] = 1
    return LocoTask(task, documents, queries, qrels)


@dataclass(frozen=True)
class LocoStats:
    output: Path
    task: str
    documents: int
    queries: int  # in queries.jsonl
    judged_queries: int  # in qrels/test.tsv
    judgments: int


def write_loco(
    queries_path: str | Path,
    documents_path: str | Path,
    task: str,
    output: str | Path,
    *,
    overwrite: bool = False,
) -> LocoStats:
    """Write one LoCoV1 task (see `read_loco`) as a BEIR folder: every query in the `test`
    split (LoCoV1 has no training queries), empty titles, and `loco.json` for provenance."""
    target = new_target(output, overwrite, inputs=(queries_path, documents_path))
    loaded = read_loco(queries_path, documents_path, task)
    stats = LocoStats(
        target,
        task,
        len(loaded.documents),
        len(loaded.queries),
        len(loaded.qrels),
        sum(len(j) for j in loaded.qrels.values()),
    )

    def write(stage: Path) -> None:
        with durable_open(stage / "corpus.jsonl") as handle:
            for pid, passage in loaded.documents.items():
                handle.write(
                    json.dumps({"_id": pid, "title": "", "text": passage}, ensure_ascii=False) + "\n"
                )
        with durable_open(stage / "queries.jsonl") as handle:
            for qid, text in loaded.queries.items():
                handle.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
        write_qrels(stage / "qrels" / "test.tsv", loaded.qrels)
        provenance = {
            "format": "LoCoV1 (hazyresearch/LoCoV1-Queries, hazyresearch/LoCoV1-Documents)",
            "queries": str(Path(queries_path).expanduser().resolve()),
            "documents": str(Path(documents_path).expanduser().resolve()),
            "task": task,
            "counts": {k: v for k, v in vars(stats).items() if k not in ("output", "task")},
        }
        with durable_open(stage / "loco.json") as handle:
            handle.write(json.dumps(provenance, indent=2, sort_keys=True) + "\n")

    publish_folder(write, target, overwrite, "loco")
    return stats
