"""Runs: retrieve every judged query, and write/read them as TREC run files."""

from __future__ import annotations

from pathlib import Path

from rich.progress import Progress

from tessera.data.datasets import EvalDataset
from tessera.retrieval.fusion import Run
from tessera.retrieval.hits import Hit
from tessera.retrieval.index import Index

QUERY_BATCH = 64


def retrieve(index: Index, dataset: EvalDataset, depth: int = 1000, show_progress: bool = True) -> Run:
    """Top-`depth` hits for every query of the dataset."""
    qids = list(dataset.queries)
    run: Run = {}
    with Progress(transient=True, disable=not show_progress) as bar:
        task = bar.add_task(f"searching {index.root.name}", total=len(qids))
        for start in range(0, len(qids), QUERY_BATCH):
            chunk = qids[start : start + QUERY_BATCH]
            for qid, hits in zip(
                chunk, index.batch_search([dataset.queries[q] for q in chunk], depth), strict=True
            ):
                run[qid] = hits
            bar.update(task, advance=len(chunk))
    return run


def write_trec(run: Run, path: str | Path, tag: str = "tessera") -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    with partial.open("w", encoding="utf-8") as handle:
        for qid, hits in run.items():
            handle.writelines(f"{qid} Q0 {h.doc_id} {h.rank} {h.score:.6f} {tag}\n" for h in hits)
    partial.replace(path)


def read_trec(path: str | Path) -> Run:
    run: Run = {}
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            qid, _, doc_id, rank, score, *_ = line.split()
            run.setdefault(qid, []).append(Hit(doc_id, float(score), int(rank)))
    return run
