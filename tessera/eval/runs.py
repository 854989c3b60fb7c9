"""Runs: retrieve every query of a dataset or a queries file (one index, or several fused), and
write/read them as TREC run files."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from rich.progress import Progress

from tessera.data.datasets import EvalDataset
from tessera.retrieval.fusion import Run, check_fusion, fuse
from tessera.retrieval.hits import Hit
from tessera.retrieval.index import Index

QUERY_BATCH = 64


def iter_search(
    indexes: Sequence[Index],
    queries: Mapping[str, str],
    k: int = 1000,
    depth: int = 1000,
    fusion: str = "rrf",
    weights: Sequence[float] | None = None,
    rrf_k: int = 60,
    show_progress: bool = True,
) -> Iterator[tuple[str, list[Hit]]]:
    """Each query's top `k`, in the order given, `QUERY_BATCH` queries at a time, so a run of any
    size can be written without being held: one index searched at `k`, or several each searched
    at `max(depth, k)` and fused per query (`fusion`: rrf or wsum) as `hybrid_search` fuses."""
    check_fusion(fusion, weights, len(indexes))
    deep = k if len(indexes) == 1 else max(depth, k)
    qids = list(queries)
    with Progress(transient=True, disable=not show_progress) as bar:
        task = bar.add_task(f"searching {' + '.join(index.root.name for index in indexes)}", total=len(qids))
        for start in range(0, len(qids), QUERY_BATCH):
            chunk = qids[start : start + QUERY_BATCH]
            texts = [queries[qid] for qid in chunk]
            runs = [dict(zip(chunk, index.batch_search(texts, deep), strict=True)) for index in indexes]
            fused = fuse(runs, fusion, weights, rrf_k=rrf_k, depth=deep, top=k)
            yield from ((qid, fused[qid]) for qid in chunk if qid in fused)
            bar.update(task, advance=len(chunk))


def search_run(indexes: Sequence[Index], queries: Mapping[str, str], **options) -> Run:
    """`iter_search` held as one run (query id -> hits); `options` are its keywords."""
    return dict(iter_search(indexes, queries, **options))


def retrieve(
    index: Index,
    queries: EvalDataset | Mapping[str, str],
    depth: int = 1000,
    show_progress: bool = True,
) -> Run:
    """Top-`depth` hits for every query (id -> text) of a mapping or a dataset."""
    texts = queries.queries if isinstance(queries, EvalDataset) else queries
    return search_run([index], texts, k=depth, show_progress=show_progress)


def write_trec(
    run: Run | Iterable[tuple[str, list[Hit]]], path: str | Path, tag: str = "tessera"
) -> tuple[int, int]:
    """Write a run (or stream `iter_search`) atomically: the file appears complete or not at all.
    Returns how many queries and hits were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    queries = hits_written = 0
    try:
        with partial.open("w", encoding="utf-8") as handle:
            for qid, hits in run.items() if isinstance(run, Mapping) else run:
                handle.writelines(f"{qid} Q0 {h.doc_id} {h.rank} {h.score:.6f} {tag}\n" for h in hits)
                queries, hits_written = queries + 1, hits_written + len(hits)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)
    return queries, hits_written


def read_trec(path: str | Path) -> Run:
    run: Run = {}
    with Path(path).open(encoding="utf-8-sig") as handle:
        for line in handle:
            qid, _, doc_id, rank, score, *_ = line.split()
            run.setdefault(qid, []).append(Hit(doc_id, float(score), int(rank)))
    return run
