"""Rank fusion of several runs, with pyserini's implementation of RRF (Cormack et al. 2009)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tessera.retrieval.hits import Hit

if TYPE_CHECKING:
    from tessera.retrieval.index import Index

Run = dict[str, list[Hit]]  # query id -> ranked hits


def reciprocal_rank_fusion(runs: list[Run], k: int = 60, depth: int = 1000, top: int = 1000) -> Run:
    """Fuse runs by summing 1 / (k + rank) over the runs that retrieved a document."""
    if len(runs) == 1:
        return {qid: hits[:top] for qid, hits in runs[0].items()}
    from pyserini.fusion import reciprocal_rank_fusion as pyserini_rrf
    from pyserini.trectools import TrecRun

    trec_runs = [
        TrecRun.from_list(
            [
                (qid, "Q0", hit.doc_id, hit.rank, hit.score, "tessera")
                for qid, hits in run.items()
                for hit in hits
            ]
        )
        for run in runs
    ]
    fused = pyserini_rrf(trec_runs, rrf_k=k, depth=depth, k=top)
    out: Run = {qid: [] for run in runs for qid in run}
    for topic, docid, rank, score in fused.run_data[["topic", "docid", "rank", "score"]].itertuples(
        index=False
    ):
        out[str(topic)].append(Hit(str(docid), float(score), int(rank)))
    return out


def hybrid_search(
    indexes: Sequence[Index], queries: Sequence[str], k: int = 10, depth: int = 1000, rrf_k: int = 60
) -> list[list[Hit]]:
    """Search several indexes (e.g. BM25 + dense) and fuse each query's hits by RRF."""
    keys = [str(i) for i in range(len(queries))]
    runs = [dict(zip(keys, index.batch_search(queries, depth), strict=True)) for index in indexes]
    fused = reciprocal_rank_fusion(runs, k=rrf_k, depth=depth, top=k)
    return [fused[key] for key in keys]
