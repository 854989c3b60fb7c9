"""Runs: retrieve every query of a dataset or a queries file (one index, or several fused), and
write/read them as TREC run files."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.progress import Progress

from tessera.data.datasets import EvalDataset
from tessera.retrieval.fusion import Run, check_fusion, fuse
from tessera.retrieval.hits import Hit
from tessera.retrieval.index import Index

QUERY_BATCH = 64


def retrieve(
    index: Index,
    queries: EvalDataset | Mapping[str, str],
    depth: int = 1000,
    show_progress: bool = True,
) -> Run:
    """Top-`depth` hits for every query (id -> text) of a mapping or a dataset."""
    texts = queries.queries if isinstance(queries, EvalDataset) else queries
    qids = list(texts)
    run: Run = {}
    with Progress(transient=True, disable=not show_progress) as bar:
        task = bar.add_task(f"searching {index.root.name}", total=len(qids))
        for start in range(0, len(qids), QUERY_BATCH):
            chunk = qids[start : start + QUERY_BATCH]
            for qid, hits in zip(chunk, index.batch_search([texts[q] for q in chunk], depth), strict=True):
                run[qid] = hits
            bar.update(task, advance=len(chunk))
    return run


def search_run(
    indexes: Sequence[Index],
    queries: Mapping[str, str],
    k: int = 1000,
    depth: int = 1000,
    fusion: str = "rrf",
    weights: Sequence[float] | None = None,
    rrf_k: int = 60,
    show_progress: bool = True,
) -> Run:
    """The top `k` of every query: one index searched at `k`, or several each searched at
    `max(depth, k)` and fused (`fusion`: rrf or wsum) the way `hybrid_search` fuses one query."""
    check_fusion(fusion, weights, len(indexes))
    if len(indexes) == 1:
        return retrieve(indexes[0], queries, k, show_progress)
    deep = max(depth, k)
    runs = [retrieve(index, queries, deep, show_progress) for index in indexes]
    fused = fuse(runs, fusion, weights, rrf_k=rrf_k, depth=deep, top=k)
    return {qid: fused[qid] for qid in queries if qid in fused}


def write_trec(run: Run, path: str | Path, tag: str = "tessera") -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    with partial.open("w", encoding="utf-8") as handle:
        for qid, hits in run.items():
            handle.writelines(f"{qid} Q0 {h.doc_id} {h.rank} {h.score:.6f} {tag}\n" for h in hits)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)


def read_trec(path: str | Path) -> Run:
    run: Run = {}
    with Path(path).open(encoding="utf-8-sig") as handle:
        for line in handle:
            qid, _, doc_id, rank, score, *_ = line.split()
            run.setdefault(qid, []).append(Hit(doc_id, float(score), int(rank)))
    return run
