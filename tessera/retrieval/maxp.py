"""MaxP: a document scores as its best passage (Dai & Callan, 2019), over a chunked index.

The backend ranks passages; a document's score is the first (best) of its passages in that
ranking. When the top k' passages hold at least k distinct documents, those documents are
exactly the top k by MaxP (every other document's passages all score below them), so the
search widens k' until they do or the backend has no more candidates (an approximate
backend's probe is exhausted when it returns fewer than k' labels): exact on exact backends.

With `per_document` > 1 the same holds for passages: up to that many of one document's best
passages are hits of their own (a RAG context drawn from the best passages, several of them
from one long document), and the top k such hits are exact once k' holds k of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np

# Passages fetched per wanted document on the first try; widened by doubling when short.
FANOUT = 4

Ranked = list[tuple[int, float, int]]  # (document ordinal, score, passage row), best first


def best_passages(
    scores: np.ndarray, labels: np.ndarray, passage_docs: np.ndarray, k: int, per_document: int = 1
) -> Ranked:
    """The first k passages of one query's passage ranking, at most `per_document` of any one
    document (1: the first k distinct documents, each with its best passage)."""
    taken: Counter[int] = Counter()
    ranked: Ranked = []
    for score, label in zip(scores, labels, strict=True):
        if label < 0:
            continue
        doc = int(passage_docs[label])
        if taken[doc] < per_document:
            taken[doc] += 1
            ranked.append((doc, float(score), int(label)))
            if len(ranked) == k:
                break
    return ranked


def maxp_search(
    search: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]],
    queries: np.ndarray,
    passage_docs: np.ndarray,
    k: int,
    per_document: int = 1,
) -> list[Ranked]:
    """Top-k documents per query by MaxP (or passages, `per_document` > 1); `search(vectors,
    k')` is the passage backend's search."""
    total_passages = len(passage_docs)
    per_doc = np.bincount(passage_docs.astype(np.int64)) if total_passages else np.zeros(0, dtype=np.int64)
    want = min(k, int(np.minimum(per_doc, per_document).sum()))
    results: list[Ranked | None] = [None] * len(queries)
    pending = list(range(len(queries)))
    depth = min(k * FANOUT, total_passages)
    while pending:
        scores, labels = search(queries[pending], depth)
        still = []
        for row, query in enumerate(pending):
            ranked = best_passages(scores[row], labels[row], passage_docs, k, per_document)
            exhausted = depth >= total_passages or int((labels[row] >= 0).sum()) < depth
            if len(ranked) >= want or exhausted:
                results[query] = ranked
            else:
                still.append(query)
        pending, depth = still, min(depth * 2, total_passages)
    return [ranked or [] for ranked in results]
