"""Search restricted to a set of documents (a metadata filter's, or ids a caller names).

Plans, chosen by `Index` from how many documents the restriction keeps (as Qdrant and Weaviate
plan filtered vector search):
- `restricted_search`, any index kind: search deeper, x4 a round, until k of the allowed
  documents are found or the whole index is ranked, and keep the allowed ones in order: the
  index's own ranking with the other documents removed (Lucene, faiss, binary, token, chunked).
  A filter that keeps few documents makes it rank deep.
- a selective restriction (at most `SELECTIVE_MAX` documents) through the index's own plan:
  `exhaustive_search` for a faiss index of one vector per document, the allowed documents'
  stored vectors (decoded codes for PQ kinds) scored against the query, all of them, so no ANN
  probe or graph walk can miss one (for Flat this equals the deep search; for IVF and HNSW it is
  the exact top k among the allowed); for BM25 a filter clause on the ids inside Lucene's query
  (`LuceneBackend.search_within`).
- a broader restriction of a faiss index through faiss' IDSelector (`FaissBackend.search_within`),
  its walk or probes widened by the inverse of the share allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from tessera.retrieval.hits import Hit

Search = Callable[[list[str], int], list[list[Hit]]]  # queries, depth -> hits, best first
Ranked = list[list[tuple[str, float]]]  # (doc id, score) per query, best first
FIRST_DEPTH = 100
SELECTIVE_MAX = 20_000  # e.g. 20k x 384 multiply-adds scored one by one, ~1 ms a query


def restricted_search(
    search: Search, queries: Sequence[str], k: int, allowed: set[str], total: int, held: int | None = None
) -> list[list[Hit]]:
    """Top k of `allowed` per query, ranked by `search` over an index of `total` entries, of which
    the allowed documents hold `held` (default: one each)."""
    found: list[list[Hit]] = [[] for _ in queries]
    todo = list(range(len(queries))) if allowed else []
    want = min(k, len(allowed) if held is None else held)
    depth = min(total, max(10 * k, FIRST_DEPTH))
    while todo:
        rows = search([queries[i] for i in todo], depth)
        for i, row in zip(todo, rows, strict=True):
            kept = [hit for hit in row if hit.doc_id in allowed][:k]
            found[i] = [replace(hit, rank=rank) for rank, hit in enumerate(kept, 1)]
        if depth >= total:
            break
        todo = [i for i in todo if len(found[i]) < want]
        depth = min(total, depth * 4)
    return found


def exhaustive_search(queries: np.ndarray, vectors: np.ndarray, ids: Sequence[str], k: int) -> Ranked:
    """Top k of `ids` per query vector by inner product with their `vectors`; ties keep the order
    of `ids` (give them in label order, as faiss breaks ties)."""
    scores = queries @ vectors.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[(ids[j], float(row[j])) for j in picks] for row, picks in zip(scores, top, strict=True)]
