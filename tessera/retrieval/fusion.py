"""Fusion of several runs into one, with pyserini's implementations:
- `rrf`, reciprocal rank fusion (Cormack et al. 2009): ranks only, no parameter to choose;
- `wsum`, a weighted sum of scores min-max normalised per query and run (CombSUM; with two runs,
  the convex combination Bruch et al. 2023 compare with RRF). Scores carry how far ahead a
  document is, which ranks throw away; equal weights are the default (docs/results.md, "Score
  fusion", measures the weights on four collections).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from tessera.data.metadata import Filter
from tessera.errors import TesseraError, whole_number
from tessera.retrieval.hits import Hit

if TYPE_CHECKING:
    from pyserini.trectools import TrecRun

    from tessera.retrieval.index import Index

Run = dict[str, list[Hit]]  # query id -> ranked hits
FUSIONS = ("rrf", "wsum")


def _trec_run(run: Run, depth: int) -> TrecRun:
    """The run's first `depth` hits per query as pyserini's TrecRun; a run without a hit (a word
    BM25 never saw, a filter one index matches nowhere) is an empty one, not a failure
    (`TrecRun.from_list([])` names the columns of no column)."""
    import pandas as pd
    from pyserini.trectools import TrecRun

    rows = [
        (qid, "Q0", hit.doc_id, hit.rank, hit.score, "tessera")
        for qid, hits in run.items()
        for hit in hits[:depth]
    ]
    trec = TrecRun()
    trec.run_data = pd.DataFrame(rows, columns=TrecRun.columns)
    return trec


def _hits(fused: TrecRun, runs: Sequence[Run]) -> Run:
    out: Run = {qid: [] for run in runs for qid in run}
    for topic, docid, rank, score in fused.run_data[["topic", "docid", "rank", "score"]].itertuples(
        index=False
    ):
        out[str(topic)].append(Hit(str(docid), float(score), int(rank)))
    return out


def reciprocal_rank_fusion(runs: list[Run], k: int = 60, depth: int = 1000, top: int = 1000) -> Run:
    """Fuse runs by summing 1 / (k + rank) over the runs that retrieved a document."""
    if len(runs) == 1:
        return {qid: hits[:top] for qid, hits in runs[0].items()}
    from pyserini.fusion import reciprocal_rank_fusion as pyserini_rrf

    return _hits(pyserini_rrf([_trec_run(run, depth) for run in runs], rrf_k=k, depth=depth, k=top), runs)


def check_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    """One finite non-negative weight per run, not all zero; None means equal weights."""
    if weights is None:
        return [1.0] * count
    weights = [float(w) for w in weights]
    if len(weights) != count:
        raise TesseraError(f"{len(weights)} weights for {count} runs", field="weights")
    if not all(math.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
        raise TesseraError(f"weights must be >= 0 and not all 0, got {weights}", field="weights")
    if not math.isfinite(sum(weights)):  # fused scores (normalised, weighted, summed) would be inf
        raise TesseraError(f"weights too large: their sum overflows, got {weights}", field="weights")
    return weights


def weighted_score_fusion(
    runs: list[Run], weights: Sequence[float] | None = None, depth: int = 1000, top: int = 1000
) -> Run:
    """Fuse runs by summing weight x min-max normalised score over the runs that retrieved a
    document: within a query, a run's best hit counts its weight and its last hit (at `depth`) 0.
    A query with one hit, or all hits tied, counts the weight for each."""
    weights = check_weights(weights, len(runs))
    if len(runs) == 1:
        return {qid: hits[:top] for qid, hits in runs[0].items()}
    from pyserini.trectools import AggregationMethod, RescoreMethod, TrecRun

    scaled = [
        _trec_run(run, depth).rescore(RescoreMethod.NORMALIZE).rescore(RescoreMethod.SCALE, scale=weight)
        for run, weight in zip(runs, weights, strict=True)
    ]
    return _hits(TrecRun.merge(scaled, AggregationMethod.SUM, depth=depth, k=top), runs)


def fuse(
    runs: list[Run],
    method: str = "rrf",
    weights: Sequence[float] | None = None,
    rrf_k: int = 60,
    depth: int = 1000,
    top: int = 1000,
) -> Run:
    """`method` (one of FUSIONS) over `runs`; `weights` belong to `wsum` alone."""
    check_fusion(method, weights)
    if method == "wsum":
        return weighted_score_fusion(runs, weights, depth=depth, top=top)
    return reciprocal_rank_fusion(runs, k=rrf_k, depth=depth, top=top)


def check_fusion(method: str, weights: Sequence[float] | None = None, count: int | None = None) -> None:
    """Refuse an unknown method, weights for rrf, and (given the number of runs) bad weights."""
    if method not in FUSIONS:
        raise TesseraError(f"unknown fusion '{method}' (known: {', '.join(FUSIONS)})", field="fusion")
    if weights is not None and method != "wsum":
        raise TesseraError(f"fusion '{method}' takes no weights (wsum does)", field="weights")
    if weights is not None and count is not None:
        check_weights(weights, count)


def check_depth(depth: int) -> None:
    """Each fused index's search depth: a whole number >= 1 (below k it is raised to k)."""
    if whole_number(depth, "depth") < 1:
        raise TesseraError(f"must be a whole number >= 1, got {depth!r}", field="depth")


def check_retrieval(fuse_count: int, fusion: str = "rrf", weights: Sequence[float] | None = None) -> None:
    """Fusion options make sense only with indexes to fuse (`fuse_count` besides the first);
    checked before any index is opened."""
    if fuse_count:
        check_fusion(fusion, weights, 1 + fuse_count)
    elif fusion != "rrf" or weights is not None:
        raise TesseraError("fusion and weights need indexes to fuse with", field="fuse")


def hybrid_search(
    indexes: Sequence[Index],
    queries: Sequence[str],
    k: int = 10,
    depth: int = 1000,
    rrf_k: int = 60,
    fusion: str = "rrf",
    weights: Sequence[float] | None = None,
    with_text: bool = False,
    filter: Filter | None = None,
) -> list[list[Hit]]:
    """Search several indexes (e.g. BM25 + dense) and fuse each query's hits (`fusion`: rrf, wsum);
    `with_text` gives the hits their stored title and text (`with_stored_text`); `filter` (a metadata
    filter) restricts every index's search to the documents it selects. A document a chunked
    index found keeps its best passage's offsets (the first such index's), so a RAG prompt or a
    reranker reads that passage, not the whole document."""
    check_fusion(fusion, weights, len(indexes))
    keys = [str(i) for i in range(len(queries))]
    runs = [
        dict(zip(keys, index.batch_search(queries, depth, filter=filter), strict=True)) for index in indexes
    ]
    fused = fuse(runs, fusion, weights, rrf_k=rrf_k, depth=depth, top=k)
    rows = with_passages(runs, fused, keys)
    return with_stored_text(indexes, rows) if with_text else rows


def with_stored_text(indexes: Sequence[Index], rows: Sequence[Sequence[Hit]]) -> list[list[Hit]]:
    """Hits given their stored title, text and metadata by the first of `indexes` that holds
    them: a fused hit found only by a later index (another corpus, or one updated without the
    other) keeps its text, which a RAG prompt would otherwise silently leave out."""
    rows = [list(row) for row in rows]
    for index in indexes:
        lacking = [(r, i) for r, row in enumerate(rows) for i, hit in enumerate(row) if hit.text is None]
        if not lacking:
            break
        for (r, i), hit in zip(lacking, index.with_text([[rows[r][i] for r, i in lacking]])[0], strict=True):
            rows[r][i] = hit
    return rows


def with_passages(runs: Sequence[Run], fused: Run, keys: Sequence[str]) -> list[list[Hit]]:
    """`fused`'s rows in `keys` order, each hit with the offsets of its best passage where a
    chunked index among `runs` found it (the first such run's)."""
    spans = {
        (key, hit.doc_id): hit.offsets
        for run in reversed(runs)
        for key, hits in run.items()
        for hit in hits
        if hit.offsets is not None
    }
    return [
        [replace(hit, offsets=spans.get((key, hit.doc_id), hit.offsets)) for hit in fused[key]]
        for key in keys
    ]


def check_distinct(roots: Sequence[Path]) -> None:
    """Indexes searched together are different indexes: one given twice (`--fuse` naming the
    index itself) was fused with itself, which changes nothing a user meant."""
    seen: set[Path] = set()
    for root in roots:
        if root in seen:
            raise TesseraError(
                f"{root} is given twice: an index fused with itself adds nothing", field="fuse"
            )
        seen.add(root)
