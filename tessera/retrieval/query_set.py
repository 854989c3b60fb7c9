"""A whole query set (id -> text) through one index or several fused, a batch at a time, so a
run of any size can be written as it is searched (`tessera search --queries --run`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace

from rich.progress import Progress

from tessera.retrieval.fusion import Run, hybrid_search
from tessera.retrieval.hits import Hit
from tessera.retrieval.index import Index
from tessera.retrieval.rerank import RERANK_DEPTH, Reranker, rerank

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
    remove_query: bool = False,
    reranker: Reranker | None = None,
    rerank_depth: int = RERANK_DEPTH,
) -> Iterator[tuple[str, list[Hit]]]:
    """Each query's top `k`, in the order given, `QUERY_BATCH` queries at a time: one index
    searched at `k`, or several each searched at `max(depth, k)` and fused by `hybrid_search`.

    `remove_query` drops a hit whose document id is the query's id, and ranks the rest again, as
    BEIR's evaluation does by default and pyserini's `--remove-query` (ArguAna and Quora's
    queries are corpus documents, which would otherwise find themselves).

    `reranker` scores each query's top `rerank_depth` again (`retrieval.rerank`): the first stage
    then retrieves at least that many, and the hits come back without their text."""
    first = max(k, rerank_depth) if reranker is not None else k
    deep = first if len(indexes) == 1 else max(depth, first)
    qids = list(queries)
    with Progress(transient=True, disable=not show_progress) as bar:
        task = bar.add_task(f"searching {' + '.join(index.root.name for index in indexes)}", total=len(qids))
        for start in range(0, len(qids), QUERY_BATCH):
            chunk = qids[start : start + QUERY_BATCH]
            texts = [queries[qid] for qid in chunk]
            rows = hybrid_search(indexes, texts, first, deep, rrf_k=rrf_k, fusion=fusion, weights=weights)
            if remove_query:
                rows = [without_query(qid, row) for qid, row in zip(chunk, rows, strict=True)]
            if reranker is not None:
                heads = indexes[0].with_text([row[:rerank_depth] for row in rows])  # the text it reads
                rows = [head + row[rerank_depth:] for head, row in zip(heads, rows, strict=True)]
                rows = rerank(reranker, texts, rows, rerank_depth)
                rows = [[replace(h, title=None, text=None, passage=None) for h in row[:k]] for row in rows]
            yield from zip(chunk, rows, strict=True)
            bar.update(task, advance=len(chunk))


def without_query(qid: str, hits: list[Hit]) -> list[Hit]:
    """`hits` less the document whose id is `qid`, ranked 1.. again."""
    if all(hit.doc_id != qid for hit in hits):
        return hits
    kept = [hit for hit in hits if hit.doc_id != qid]
    return [replace(hit, rank=rank) for rank, hit in enumerate(kept, start=1)]


def rerank_run(
    reranker: Reranker,
    queries: Mapping[str, str],
    run: Run,
    index: Index,
    depth: int = RERANK_DEPTH,
    show_progress: bool = True,
) -> Run:
    """A held run reranked query by query (`retrieval.rerank.rerank`), `index` giving the hits'
    text; hits come back without text."""
    reranked: Run = {}
    with Progress(transient=True, disable=not show_progress) as bar:
        task = bar.add_task(f"reranking with {reranker.spec}", total=len(run))
        for qid, hits in run.items():
            head = index.with_text([hits[:depth]])[0]
            row = rerank(reranker, [queries[qid]], [[*head, *hits[depth:]]], depth)[0]
            reranked[qid] = [replace(h, title=None, text=None, passage=None) for h in row]
            bar.update(task, advance=1)
    return reranked


def search_run(indexes: Sequence[Index], queries: Mapping[str, str], **options) -> Run:
    """`iter_search` held as one run (query id -> hits); `options` are its keywords."""
    return dict(iter_search(indexes, queries, **options))
