"""Late-interaction retrieval over a token index: ColBERT MaxSim and XTR imputation scoring.

Both modes start with token retrieval: every query token fetches its `k_prime` nearest document
tokens from faiss, and the documents owning them are the candidates. They differ in scoring:

- ColBERT (Khattab & Zaharia 2020; v2 Santhanam et al. 2022) reads each candidate's full stored
  token vectors and ranks by exact MaxSim: sum over query tokens of the best dot product with
  any of the document's tokens.
- XTR (Lee et al., NeurIPS 2023) scores with the retrieved tokens alone: a query token's score
  for a document is its best retrieved token of that document, or, when it retrieved none, the
  lowest score it retrieved at all (an upper bound of what it missed); the document score is the
  mean over query tokens. No document vectors are read.

The scoring stages are plain functions (`colbert_rerank`, `xtr_score`) so a benchmark can time
them over the same candidates (`LateInteractionSearch.retrieve_tokens` yields those).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from tessera.errors import EncoderError
from tessera.indexing.backends import Params
from tessera.indexing.manifest import Manifest
from tessera.indexing.token_backend import TokenBackend, late_params
from tessera.models.multivector import parse_multivector_spec

RERANK_DOCS = 512  # candidates scored per matrix product, which bounds memory for long lists


class DocTokenStore(Protocol):
    def doc_tokens(self, ordinals: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass
class TokenHits:
    """What one query's token retrieval returned, row i for query token i (k' columns, best first)."""

    scores: np.ndarray  # float32 (query tokens, k')
    doc_ids: np.ndarray  # document ordinal of each retrieved token; -1 where nothing was returned

    def candidates(self) -> np.ndarray:
        """The distinct documents any query token reached, ascending."""
        return np.unique(self.doc_ids[self.doc_ids >= 0])


def maxsim(query: np.ndarray, doc_tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """MaxSim of one query against documents whose token vectors are concatenated in order.

    Per document: the sum over query tokens of the largest dot product with the document's
    tokens. A document with no tokens scores 0.
    """
    scores = np.zeros(len(lengths), dtype=np.float32)
    filled = lengths > 0
    if not filled.any():
        return scores
    similarities = query.astype(np.float32, copy=False) @ doc_tokens.T
    starts = (np.cumsum(lengths) - lengths)[filled]
    scores[filled] = np.maximum.reduceat(similarities, starts, axis=1).sum(axis=0)
    return scores


def colbert_rerank(query: np.ndarray, candidate_ids: np.ndarray, doc_store: DocTokenStore) -> np.ndarray:
    """ColBERT's second stage: exact MaxSim of each candidate from its full stored token vectors."""
    candidate_ids = np.asarray(candidate_ids, dtype=np.int64)
    scores = np.empty(len(candidate_ids), dtype=np.float32)
    for start in range(0, len(candidate_ids), RERANK_DOCS):
        chunk = candidate_ids[start : start + RERANK_DOCS]
        tokens, lengths = doc_store.doc_tokens(chunk)
        scores[start : start + len(chunk)] = maxsim(query, tokens, lengths)
    return scores


def xtr_score(
    token_scores: np.ndarray, token_doc_ids: np.ndarray, k_prime: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """XTR scores from retrieved tokens only: (candidate document ids ascending, their scores).

    `token_scores[i]` are query token i's retrieved scores, best first, and `token_doc_ids[i]`
    the documents those tokens belong to (-1 = no result). With `k_prime`, only the first
    `k_prime` columns count, so one retrieval at a large k' can be scored at smaller ones.
    """
    if k_prime is not None:
        token_scores, token_doc_ids = token_scores[:, :k_prime], token_doc_ids[:, :k_prime]
    n, k = token_scores.shape
    rows, doc_ids, scores = np.repeat(np.arange(n), k), token_doc_ids.ravel(), token_scores.ravel()
    # m_i: the lowest score query token i kept (its k'-th), imputed where it reached no token of d.
    if (valid := doc_ids >= 0).all():
        lowest = token_scores.min(axis=1)
    else:
        rows, doc_ids, scores = rows[valid], doc_ids[valid], scores[valid]
        lowest = np.where(valid.reshape(n, k), token_scores, np.inf).min(axis=1)
        lowest[np.isinf(lowest)] = 0.0
    docs, column = _dense_columns(doc_ids)
    # One flat table (query token, candidate): a 1-d ufunc.at is numpy's fast path.
    best = np.full(n * len(docs), -np.inf, dtype=np.float32)
    np.maximum.at(best, rows * len(docs) + column, scores)
    # A retrieved score is never below its token's m_i, so the max fills only the misses.
    filled = np.maximum(best.reshape(n, len(docs)), lowest.astype(np.float32)[:, None])
    return docs, filled.mean(axis=0)


def _dense_columns(doc_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct ids ascending, column of each id): `np.unique(..., return_inverse=True)`.

    Marking ids in a table is linear where sorting is not; it wins whenever the id range is
    not much larger than the number of ids (a query's k' hits against one corpus), which
    keeps XTR's scoring a small fraction of token retrieval.
    """
    if not len(doc_ids):
        return doc_ids, doc_ids
    span = int(doc_ids.max()) + 1
    if span > 16 * len(doc_ids):
        return np.unique(doc_ids, return_inverse=True)
    seen = np.zeros(span, dtype=bool)
    seen[doc_ids] = True
    return np.flatnonzero(seen), (np.cumsum(seen) - 1)[doc_ids]


def top_k(doc_ids: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (ties: lower ordinal first, as `doc_ids` come ascending)."""
    order = np.argsort(-scores, kind="stable")[:k]
    return scores[order], doc_ids[order]


class LateInteractionSearch:
    """A token index behind the backend interface `Index` uses: `search(queries, k)`.

    `queries` is a list of (tokens, dim) arrays, one per query, as multi-vector encoders return.
    """

    supports_remove = False

    def __init__(self, tokens: TokenBackend, mode: str, k_prime: int):
        self.tokens, self.mode, self.k_prime = tokens, mode, k_prime
        self.dim, self.on_gpu, self.ntotal = tokens.dim, tokens.on_gpu, tokens.doc_count

    def retrieve_tokens(self, queries: Sequence[np.ndarray], k_prime: int | None = None) -> list[TokenHits]:
        """Token retrieval for a batch of queries in one faiss call."""
        if not queries:
            return []
        sizes = [len(q) for q in queries]
        for query in queries:
            if query.ndim != 2 or query.shape[1] != self.dim:
                raise EncoderError(
                    f"dimension mismatch: index holds {self.dim}-d token vectors, "
                    f"a query has shape {query.shape}",
                    field="dim",
                )
        scores, positions = self.tokens.search_tokens(np.concatenate(queries), k_prime or self.k_prime)
        doc_ids = self.tokens.docs_of(positions)
        bounds = np.cumsum(sizes)[:-1]
        return [
            TokenHits(s, d) for s, d in zip(np.split(scores, bounds), np.split(doc_ids, bounds), strict=True)
        ]

    def score(self, query: np.ndarray, hits: TokenHits) -> tuple[np.ndarray, np.ndarray]:
        """(candidate ids, scores) of one query under this index's mode."""
        if self.mode == "xtr":
            return xtr_score(hits.scores, hits.doc_ids)
        candidates = hits.candidates()
        return candidates, colbert_rerank(query, candidates, self.tokens)

    def search(self, queries: Sequence[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, document ordinals), each (queries, k), best first; padded with -inf / -1."""
        out_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        out_ids = np.full((len(queries), k), -1, dtype=np.int64)
        for row, (query, hits) in enumerate(zip(queries, self.retrieve_tokens(queries), strict=True)):
            scores, ids = top_k(*self.score(query, hits), k)
            out_scores[row, : len(ids)], out_ids[row, : len(ids)] = scores, ids
        return out_scores, out_ids


def open_late_interaction(
    root: Path, manifest: Manifest, params: Params, mmap: bool = False
) -> LateInteractionSearch:
    """The searcher for a token index; `mode` defaults to the encoder spec's prefix."""
    mode, k_prime, faiss_params = late_params(params)
    spec = parse_multivector_spec(manifest.encoder)
    return LateInteractionSearch(
        TokenBackend(root, faiss_params, mmap), mode or (spec[0] if spec else "colbert"), k_prime
    )
