"""MaxP: a document scores as its best passage (Dai & Callan, 2019), over a chunked index.

The backend ranks passages; a document's score is the first (best) of its passages in that
ranking. When the top k' passages hold at least k distinct documents, those documents are
exactly the top k by MaxP (every other document's passages all score below them), so the
search widens k' until they do or the backend has no more candidates (an approximate
backend's probe is exhausted when it returns fewer than k' labels): exact on exact backends.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

# Passages fetched per wanted document on the first try; widened by doubling when short.
FANOUT = 4

Ranked = list[tuple[int, float, int]]  # (document ordinal, score, passage row), best first


def best_passages(scores: np.ndarray, labels: np.ndarray, passage_docs: np.ndarray, k: int) -> Ranked:
    """The first k distinct documents of one query's passage ranking, each with its best passage."""
    seen: dict[int, tuple[float, int]] = {}
    for score, label in zip(scores, labels, strict=True):
        if label < 0:
            continue
        doc = int(passage_docs[label])
        if doc not in seen:
            seen[doc] = (float(score), int(label))
            if len(seen) == k:
                break
    return [(doc, score, label) for doc, (score, label) in seen.items()]


def maxp_search(
    search: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]],
    queries: np.ndarray,
    passage_docs: np.ndarray,
    k: int,
) -> list[Ranked]:
    """Top-k documents per query by MaxP; `search(vectors, k')` is the passage backend's search."""
    total_passages = len(passage_docs)
    total_docs = int(passage_docs.max()) + 1 if total_passages else 0
    want = min(k, total_docs)
    results: list[Ranked | None] = [None] * len(queries)
    pending = list(range(len(queries)))
    depth = min(k * FANOUT, total_passages)
    while pending:
        scores, labels = search(queries[pending], depth)
        still = []
        for row, query in enumerate(pending):
            ranked = best_passages(scores[row], labels[row], passage_docs, k)
            exhausted = depth >= total_passages or int((labels[row] >= 0).sum()) < depth
            if len(ranked) >= want or exhausted:
                results[query] = ranked
            else:
                still.append(query)
        pending, depth = still, min(depth * 2, total_passages)
    return [ranked or [] for ranked in results]
