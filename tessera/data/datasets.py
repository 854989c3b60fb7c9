"""Evaluation datasets: queries and relevance judgments from ir_datasets or a BEIR folder."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from tessera import config
from tessera.data import irds
from tessera.data.folds import Fold, judged_files
from tessera.data.readers import read_jsonl, read_queries, text_lines
from tessera.errors import DatasetError

Qrels = dict[str, dict[str, int]]


@dataclass(frozen=True)
class EvalDataset:
    """Judged queries only: queries without judgments cannot be scored."""

    name: str
    queries: dict[str, str]
    qrels: Qrels

    def within(self, doc_ids: set[str], label: str = "filtered") -> EvalDataset:
        """The task on a sub-collection: judgments of the other documents dropped, and the
        queries left without a relevant document with them (nothing there to find)."""
        qrels = {
            qid: {doc: grade for doc, grade in judged.items() if doc in doc_ids}
            for qid, judged in self.qrels.items()
        }
        kept = [qid for qid in self.queries if any(grade > 0 for grade in qrels.get(qid, {}).values())]
        name = f"{self.name} ({label}: {len(kept)} of {len(self.queries)} queries)"
        return EvalDataset(name, {qid: self.queries[qid] for qid in kept}, {qid: qrels[qid] for qid in kept})


def read_beir_qrels(path: Path) -> Qrels:
    """Judgments of a BEIR qrels file (`query-id corpus-id score`, header optional, blank lines
    skipped). A grade is a whole number (`2`, `2.0`); a document judged twice for one query must
    carry one grade: a second, different one would silently replace the first."""
    qrels: Qrels = {}
    for number, text in text_lines(path):
        line = text.rstrip("\r\n")
        row = line.split("\t")
        if not line.strip() or (number == 1 and row[0] == "query-id"):
            continue
        if len(row) != 3:
            raise DatasetError(
                f"expected query-id, corpus-id, score; got {len(row)} columns", file=path, line=number
            )
        _judge(qrels, row[0], row[1], _grade(row[2], path, number), path, number)
    return qrels


def _judge(qrels: Qrels, query_id: str, doc_id: str, grade: int, path: Path, line: int) -> None:
    """Record one judgment; a document judged twice for one query must carry one grade (a second,
    different one would silently replace the first)."""
    judged = qrels.setdefault(query_id, {})
    if judged.get(doc_id, grade) != grade:
        why = f"document '{doc_id}' is judged {judged[doc_id]} for query '{query_id}' on an earlier line"
        raise DatasetError(f"{why} and {grade} here", file=path, line=line, field="score")
    judged[doc_id] = grade


def _grade(text: str, path: Path, line: int) -> int:
    try:
        value = float(text)
    except ValueError:
        raise DatasetError(f"score '{text}' is not a number", file=path, line=line, field="score") from None
    if not math.isfinite(value) or value != int(value):
        raise DatasetError(
            f"score '{text}' is not a whole number (relevance grades are 0, 1, 2, ...)",
            file=path,
            line=line,
            field="score",
        )
    return int(value)


def _judged_in_fold(qrels_dir: Path, fold: Fold) -> Qrels:
    """The judgments of the fold's queries, from the files that judge every query."""
    qrels: Qrels = {}
    for path in judged_files(qrels_dir):
        for qid, judged in read_beir_qrels(path).items():
            if qid in qrels:
                raise DatasetError(f"query '{qid}' is judged in two split files", file=path, field="query-id")
            qrels[qid] = judged
    return {qid: judged for qid, judged in qrels.items() if fold.holds(qid)}


def _from_beir_folder(folder: Path, split: str) -> EvalDataset:
    qrels_path = folder / "qrels" / f"{split}.tsv"
    fold = None if qrels_path.is_file() else Fold.parse(split)
    if fold is None and not qrels_path.is_file():
        splits = sorted(p.stem for p in (folder / "qrels").glob("*.tsv"))
        raise DatasetError(
            f"no split '{split}' (available: {', '.join(splits) or 'none'})", file=qrels_path, field="split"
        )
    qrels = _judged_in_fold(folder / "qrels", fold) if fold else read_beir_qrels(qrels_path)
    if not qrels:
        where = folder / "qrels" if fold else qrels_path
        raise DatasetError(
            f"split '{split}' holds no judgment: nothing can be scored", file=where, field="split"
        )
    queries = _judged_queries(folder / "queries.jsonl", qrels)
    missing = sorted(set(qrels) - set(queries))
    if missing:
        raise DatasetError(
            f"{len(missing)} judged queries are absent, e.g. '{missing[0]}'",
            file=folder / "queries.jsonl",
            field="_id",
        )
    return EvalDataset(f"{folder.name}/{split}", queries, qrels)


def _judged_queries(path: Path, qrels: Qrels) -> dict[str, str]:
    """The judged queries' texts; a repeated id (anywhere: which text would be scored?) or an
    empty judged query is an error naming its line."""
    seen: set[str] = set()
    queries = {}
    for query in read_jsonl(path):
        if query.id in seen:
            raise DatasetError(f"query id '{query.id}' repeated", file=path, line=query.line, field="_id")
        seen.add(query.id)
        if query.id in qrels:
            if not query.text.strip():
                raise DatasetError(
                    f"judged query '{query.id}' is empty", file=path, line=query.line, field="text"
                )
            queries[query.id] = query.text
    return queries


def _from_ir_datasets(dataset_id: str, fold: Fold | None = None) -> EvalDataset:
    """Every judged query of the id, or those of `fold`."""
    dataset = irds.load(dataset_id)
    if not (dataset.has_queries() and dataset.has_qrels()):
        raise DatasetError(f"ir_datasets id '{dataset_id}' has no queries or no qrels", field="dataset")
    qrels: Qrels = {}
    with irds.offline_read(dataset_id, "dataset"):
        for qrel in dataset.qrels_iter():
            qrels.setdefault(qrel.query_id, {})[qrel.doc_id] = qrel.relevance
        if fold:
            qrels = {qid: judged for qid, judged in qrels.items() if fold.holds(qid)}
        queries = {q.query_id: q.default_text() for q in dataset.queries_iter() if q.query_id in qrels}
    return EvalDataset(f"{dataset_id}/{fold.name()}" if fold else dataset_id, queries, qrels)


def _is_beir_folder(path: Path) -> bool:
    return (path / "queries.jsonl").is_file() and (path / "qrels").is_dir()


def read_qrels_file(path: Path) -> EvalDataset:
    """Judgments alone, from a TREC qrels file (`query-id iteration doc-id grade`, as trec_eval
    reads it) or a BEIR one (`query-id corpus-id score`, tab-separated): scoring runs made
    elsewhere needs no query text, so the queries are the judged ids with empty texts."""
    qrels: Qrels = {}
    for number, text in text_lines(path):
        row = text.split()
        if not row or (number == 1 and row[0] == "query-id"):
            continue
        if len(row) not in (3, 4):
            why = (
                "expected query-id, iteration, doc-id, grade (TREC) or query-id, corpus-id, score; "
                f"got {len(row)} columns"
            )
            raise DatasetError(why, file=path, line=number)
        _judge(qrels, row[0], row[-2], _grade(row[-1], path, number), path, number)
    if not qrels:
        raise DatasetError("holds no judgments", file=path)
    return EvalDataset(path.name, dict.fromkeys(qrels, ""), qrels)


def load_eval_dataset(spec: str | Path, split: str = "test") -> EvalDataset:
    """Resolve `spec`: a BEIR folder (+ split), an ir_datasets id (`ID/SPLIT` when that exists),
    or a BEIR folder in TESSERA_DATA_DIR (`NAME` or `beir/NAME[/SPLIT]`). A split `foldIofK-train`
    or `-test` is fold I of K-fold cross-validation (`tessera.data.folds`) on any of them."""
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        if not _is_beir_folder(path):
            why = "not a BEIR folder (needs queries.jsonl and qrels/)"
            raise DatasetError(why, file=path, field="dataset")
        return _from_beir_folder(path, split)
    local = config.data_dir()
    parts = text.split("/")
    if parts[0] == "beir" and len(parts) >= 2 and _is_beir_folder(local / parts[1]):
        return _from_beir_folder(local / parts[1], parts[2] if len(parts) > 2 else split)
    if _is_beir_folder(local / text):
        return _from_beir_folder(local / text, split)
    if irds.is_known(f"{text}/{split}"):
        return _from_ir_datasets(f"{text}/{split}")
    return _from_ir_datasets(text, Fold.parse(split))


def load_queries(spec: str | Path, split: str = "test") -> dict[str, str]:
    """Queries to run, judged or not: a .jsonl/.tsv file (every query in it), or any dataset
    `load_eval_dataset` resolves (its split's judged queries)."""
    path = Path(str(spec)).expanduser()
    if path.is_file():
        return read_queries(path)
    return load_eval_dataset(spec, split).queries
