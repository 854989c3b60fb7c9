"""Runs: retrieve every query of a dataset, and write/read runs as TREC files (a query-set
search, `retrieval.query_set.iter_search`, can be written as it streams)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from tessera.data.datasets import EvalDataset
from tessera.data.metadata import Filter
from tessera.data.readers import text_lines
from tessera.durable import check_output_file
from tessera.errors import TesseraError
from tessera.retrieval.fusion import Run
from tessera.retrieval.hits import Hit
from tessera.retrieval.index import Index
from tessera.retrieval.query_set import search_run


def retrieve(
    index: Index,
    queries: EvalDataset | Mapping[str, str],
    depth: int = 1000,
    show_progress: bool = True,
    remove_query: bool = False,
    filter: Filter | None = None,
) -> Run:
    """Top-`depth` hits for every query (id -> text) of a mapping or a dataset; `remove_query`:
    without a document whose id is the query's; `filter`: among the documents whose metadata
    match (`retrieval.query_set.iter_search`)."""
    texts = queries.queries if isinstance(queries, EvalDataset) else queries
    return search_run(
        [index], texts, k=depth, show_progress=show_progress, remove_query=remove_query, filter=filter
    )


def write_trec(
    run: Run | Iterable[tuple[str, list[Hit]]], path: str | Path, tag: str = "tessera"
) -> tuple[int, int]:
    """Write a run (or stream `iter_search`) atomically: the file appears complete or not at all.
    Returns how many queries and hits were written. An id holding whitespace is refused: a TREC
    run's fields are whitespace-separated, so trec_eval (and `read_trec`) would misread it."""
    path = Path(path)
    check_output_file(path, "run")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    queries = hits_written = 0
    try:
        with partial.open("w", encoding="utf-8") as handle:
            for qid, hits in run.items() if isinstance(run, Mapping) else run:
                _check_run_id(qid, "query_id", path)
                for hit in hits:
                    _check_run_id(hit.doc_id, "doc_id", path)
                handle.writelines(f"{qid} Q0 {h.doc_id} {h.rank} {h.score:.6f} {tag}\n" for h in hits)
                queries, hits_written = queries + 1, hits_written + len(hits)
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return queries, hits_written


def _check_run_id(value: str, field: str, path: Path) -> None:
    if not value or any(char.isspace() for char in value):
        raise TesseraError(
            f"id {value!r} holds whitespace, which a TREC run cannot carry (its fields are "
            "whitespace-separated, so trec_eval would misread the line)",
            file=path,
            field=field,
        )


def trec_order(scored: Iterable[tuple[str, float]]) -> list[tuple[str, float]]:
    """(doc id, score) pairs in trec_eval's order: score down, ties by document id down. Runs
    read back and runs scored both follow it, so every ir_measures provider and a fusion of a
    run with itself agree."""
    return [(doc_id, score) for score, doc_id in sorted(((s, d) for d, s in scored), reverse=True)]


def read_trec(path: str | Path) -> Run:
    """A TREC run file (`QID Q0 DOCID RANK SCORE TAG`, whitespace separated, as trec_eval and
    pyserini write them): each query's hits ordered by score, best first, ties by document id
    from the highest (trec_eval's order, which scoring uses too, so a run fused with itself
    ranks as it; the file's own ranks are not trusted), ranks renumbered from 1. A malformed line, a score
    that is not a finite number, or a document given twice for one query is refused, naming
    the file, the line and the field."""
    path = Path(path)
    if not path.is_file():
        raise TesseraError("no such run file", file=path)
    scored: dict[str, dict[str, float]] = {}
    for number, line in text_lines(path):
        parts = line.split()
        if not parts:
            continue
        if len(parts) not in (5, 6):  # the tag is optional; more fields mean an id with spaces
            raise TesseraError(
                f"a run line has {len(parts)} fields, not the 6 of QID Q0 DOCID RANK SCORE TAG",
                file=path,
                line=number,
            )
        qid, _, doc_id, _, score = parts[:5]
        try:
            value = float(score)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise TesseraError(
                f"score '{score}' is not a finite number", file=path, line=number, field="score"
            )
        hits = scored.setdefault(qid, {})
        if doc_id in hits:
            raise TesseraError(
                f"document '{doc_id}' is ranked twice for query '{qid}'",
                file=path,
                line=number,
                field="doc_id",
            )
        hits[doc_id] = value
    return {
        qid: [Hit(doc_id, value, rank) for rank, (doc_id, value) in enumerate(trec_order(hits.items()), 1)]
        for qid, hits in scored.items()
    }
