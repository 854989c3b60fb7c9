"""A whole query set (id -> text) through one index or several fused, a batch at a time, so a
run of any size can be written as it is searched (`tessera search --queries --run`)."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from tessera.data.metadata import Filter, parse_filter
from tessera.errors import TesseraError, whole_number
from tessera.progress import quiet_bar
from tessera.retrieval.diversify import Mmr, as_mmr, diversify
from tessera.retrieval.fusion import Run, check_depth, check_fusion, hybrid_search, with_stored_text
from tessera.retrieval.hits import Hit
from tessera.retrieval.index import Index
from tessera.retrieval.rerank import (
    RERANK_DEPTH,
    Reranker,
    check_rerank_depth,
    check_reranker_spec,
    load_reranker,
    rerank,
)

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
    filter: Filter | None = None,
    mmr: Mmr | float | None = None,
) -> Iterator[tuple[str, list[Hit]]]:
    """Each query's top `k`, in the order given, `QUERY_BATCH` queries at a time: one index
    searched at `k`, or several each searched at `max(depth, k)` and fused by `hybrid_search`.

    `remove_query` drops a hit whose document id is the query's id, and ranks the rest again, as
    BEIR's evaluation does by default and pyserini's `--remove-query` (ArguAna and Quora's
    queries are corpus documents, which would otherwise find themselves).

    `reranker` scores each query's top `rerank_depth` again (`retrieval.rerank`): the first stage
    then retrieves at least that many, and the hits come back without their text. `filter` (a
    metadata filter, data/metadata.py) ranks only the documents it selects. `mmr` then picks the
    k from the top `mmr.pool(k)` for relevance and novelty (`retrieval.diversify`; a number is
    its weight)."""
    indexes = [indexes] if isinstance(indexes, Index) else list(indexes)
    if not isinstance(queries, Mapping):
        raise TesseraError(
            f"a mapping of query id to text (load_queries gives one), not a {type(queries).__name__}",
            field="queries",
        )
    k = whole_number(k, "k")
    check_depth(depth)
    mmr = as_mmr(mmr)
    first = first_stage_depth(k, reranker is not None, rerank_depth, mmr)
    deep = first if len(indexes) == 1 else max(depth, first)
    qids = list(queries)
    with quiet_bar(show_progress) as bar:
        task = bar.add_task(f"searching {' + '.join(index.root.name for index in indexes)}", total=len(qids))
        for start in range(0, len(qids), QUERY_BATCH):
            chunk = qids[start : start + QUERY_BATCH]
            texts = [queries[qid] for qid in chunk]
            rows = hybrid_search(
                indexes, texts, first, deep, rrf_k=rrf_k, fusion=fusion, weights=weights, filter=filter
            )
            if remove_query:
                rows = [without_query(qid, row) for qid, row in zip(chunk, rows, strict=True)]
            if reranker is not None:
                rows = _reranked(reranker, texts, rows, indexes, rerank_depth)
            if mmr is not None:
                heads = with_stored_text(indexes, [row[: mmr.pool(k)] for row in rows])
                rows = [[h.without_text() for h in row] for row in diversify(mmr, heads, k, indexes)]
            rows = [row[:k] for row in rows]
            yield from zip(chunk, rows, strict=True)
            bar.update(task, advance=len(chunk))


def first_stage_depth(k: int, reranking: bool, rerank_depth: int, mmr: Mmr | None) -> int:
    """How many hits the first stage retrieves for the second stages to read."""
    return max(k, rerank_depth if reranking else k, mmr.pool(k) if mmr is not None else k)


def without_query(qid: str, hits: list[Hit]) -> list[Hit]:
    """`hits` less the document whose id is `qid`, ranked 1.. again."""
    if all(hit.doc_id != qid for hit in hits):
        return hits
    kept = [hit for hit in hits if hit.doc_id != qid]
    return [replace(hit, rank=rank) for rank, hit in enumerate(kept, start=1)]


def _reranked(
    reranker: Reranker, queries: Sequence[str], rows: list[list[Hit]], indexes: Sequence[Index], depth: int
) -> list[list[Hit]]:
    """Rows reranked, `indexes` giving the text of each reranked head; returned without text."""
    heads = with_stored_text(indexes, [row[:depth] for row in rows])
    rows = [head + row[depth:] for head, row in zip(heads, rows, strict=True)]
    return [[h.without_text() for h in row] for row in rerank(reranker, queries, rows, depth)]


def rerank_run(
    reranker: Reranker | str,
    queries: Mapping[str, str],
    run: Run,
    index: Index | Sequence[Index],
    depth: int = RERANK_DEPTH,
    show_progress: bool = True,
) -> Run:
    """A held run (or `tessera eval`'s fused one) reranked query by query by a reranker or its
    `retrieval.rerank` spec, `index` (or the first of several that holds a hit) giving the hits'
    text; hits come back without text."""
    indexes = [index] if isinstance(index, Index) else list(index)
    reranker = load_reranker(reranker) if isinstance(reranker, str) else reranker
    reranked: Run = {}
    with quiet_bar(show_progress) as bar:
        task = bar.add_task(f"reranking with {reranker.spec}", total=len(run))
        for qid, hits in run.items():
            reranked[qid] = _reranked(reranker, [queries[qid]], [hits], indexes, depth)[0]
            bar.update(task, advance=1)
    return reranked


def diversify_run(
    mmr: Mmr | float, run: Run, indexes: Sequence[Index], k: int = 10, show_progress: bool = True
) -> Run:
    """A held run (or `tessera eval`'s fused one) with each query's top `mmr.pool(k)` in MMR order
    for a page of `k` (the rest below, as they were); the first of `indexes` (those searched)
    holding a hit gives its text, any may hold MMR's vectors. Hits come back without text."""
    mmr = as_mmr(mmr)
    diversified: Run = {}
    with quiet_bar(show_progress) as bar:
        task = bar.add_task(f"MMR {mmr.weight:g}", total=len(run))
        for qid, hits in run.items():
            head = with_stored_text(indexes, [hits[: mmr.pool(k)]])
            row = diversify(mmr, [head[0] + list(hits[mmr.pool(k) :])], k, indexes)[0]
            diversified[qid] = [h.without_text() for h in row]
            bar.update(task, advance=1)
    return diversified


def check_per_document(per_document: int, indexes: int, index: Index | None = None) -> None:
    """Several passages of one document come from one chunked index (`index`, when open: an
    index of one entry a document has no passages to give); fusion ranks documents."""
    if per_document < 1:
        raise TesseraError(f"must be at least 1, got {per_document}", field="per_document")
    if per_document > 1 and index is not None and index.passages is None:
        raise TesseraError(
            f"several passages of a document come from a chunked index (index --chunk); {index.root.name} "
            "holds one entry a document",
            field="per_document",
        )
    if per_document > 1 and indexes > 1:
        raise TesseraError(
            "several passages of a document come from one chunked index; fused indexes rank documents "
            "(each by its best passage)",
            field="per_document",
        )


def passages_per_document(index: Index, k: int, filter: Filter | None = None, fused: bool = False) -> int:
    """RAG's default over a chunked index: one passage a document while the index (or the part a
    filter selects) holds k documents, so the context spans k of them; fewer documents share the
    k places (one long report indexed alone gives its k best passages). Fused indexes rank
    documents: one each. docs/results.md, section 24, measures both sides of the rule."""
    if fused or index.passages is None:
        return 1
    documents = len(index.allowed(filter, None)) if filter is not None else len(index)
    return max(1, -(-k // max(documents, 1)))


def check_option_names(options: Iterable[str]) -> None:
    """Every name one of `search_one`'s options (an adapter's `options`, a store's keywords)."""
    unknown = sorted(set(options) - set(SEARCH_DEFAULTS))
    if unknown:
        known = ", ".join(sorted(SEARCH_DEFAULTS))
        raise TesseraError(
            f"unknown search option {', '.join(map(repr, unknown))}; options: {known}", field="options"
        )


def check_search_one(indexes: Sequence[Index], **options: Any) -> None:
    """`search_one`'s options (keywords, its defaults where left out) checked without a search
    (nor a model loaded): what a framework's retriever checks when it is made, so a wrong one
    fails there, naming it."""
    check_option_names(options)
    given = {**SEARCH_DEFAULTS, **options}
    if not indexes:
        raise TesseraError("no index to retrieve from", field="indexes")
    check_rerank_depth(given["rerank_depth"])
    check_depth(given["depth"])
    check_per_document(given["per_document"], len(indexes), indexes[0])
    if len(indexes) > 1:
        check_fusion(given["fusion"], given["weights"], len(indexes))
        if given["doc_ids"] is not None:
            raise TesseraError("a search among given ids takes one index, not several fused", field="doc_ids")
    if isinstance(given["reranker"], str):
        check_reranker_spec(given["reranker"])
    parse_filter(given["filter"])
    as_mmr(given["mmr"])


def search_one(
    indexes: Sequence[Index],
    query: str,
    k: int = 10,
    depth: int = 100,
    fusion: str = "rrf",
    weights: Sequence[float] | None = None,
    reranker: Reranker | str | None = None,
    rerank_depth: int = RERANK_DEPTH,
    filter: Filter | None = None,
    mmr: Mmr | float | None = None,
    per_document: int = 1,
    doc_ids: Iterable[str] | None = None,
) -> list[Hit]:
    """One query's top `k` with their text, as `tessera search "QUERY"` and RAG retrieve it: one index,
    or several fused (each searched `depth` deep; each hit's text from the first index holding it);
    with a `reranker`, the k best of the first stage's `rerank_depth` by its scores; with a
    `filter`, among the documents it selects; with `mmr`, the k picked for relevance and novelty;
    `per_document` (one chunked index): up to that many passages of one document; `doc_ids` (one
    index): among those documents only."""
    options = {name: value for name, value in locals().items() if name in SEARCH_DEFAULTS}
    check_search_one(indexes, **options)
    reranker = load_reranker(reranker) if isinstance(reranker, str) else reranker
    mmr = as_mmr(mmr)
    first = first_stage_depth(k, reranker is not None, rerank_depth, mmr)
    if len(indexes) == 1:
        hits = indexes[0].search(query, first, True, filter, doc_ids, per_document)
    else:
        deep = max(depth, first)
        hits = hybrid_search(
            indexes, [query], first, deep, fusion=fusion, weights=weights, with_text=True, filter=filter
        )[0]
    if reranker is not None:
        hits = rerank(reranker, [query], [hits], rerank_depth)[0]
    return (diversify(mmr, [hits], k, indexes)[0] if mmr is not None else hits)[:k]


# search_one's options and their defaults, one source for the adapters' checks and `check_search_one`
SEARCH_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(search_one).parameters.items()
    if name not in ("indexes", "query", "k")
}


def search_run(indexes: Sequence[Index], queries: Mapping[str, str], **options) -> Run:
    """`iter_search` held as one run (query id -> hits); `options` are its keywords."""
    return dict(iter_search(indexes, queries, **options))
