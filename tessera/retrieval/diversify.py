"""Maximal marginal relevance (Carbonell and Goldstein, SIGIR 1998): a ranking's top k chosen
one at a time from its top `depth`, each the candidate that best trades relevance against
likeness to those already chosen, so that a RAG context or a results page does not spend its
few places on near-copies (LangChain's `max_marginal_relevance_search`, LlamaIndex's MMR mode).

    pick argmax_d  weight * relevance(d) - (1 - weight) * max_{s chosen} cos(d, s)

- relevance: the ranking's own scores rescaled to [0, 1] over the candidates (min-max), so MMR
  diversifies any first stage (BM25, fused, reranked) and `weight=1` keeps its order exactly;
- likeness: cosine between the candidates' vectors from a single-vector encoder over the text a
  reranker reads (`hit_text`: title and body, or a chunk's passage); the bundled MiniLM unless
  another is named. Vectors are cached by text across queries (`EncoderReranker`); where one of
  the searched indexes was built with that encoder and holds one vector a document, its stored
  vectors are read instead (the same vectors, no encoding: about a millisecond a query).

A diversified hit's score is its MMR value when chosen, which never rises from one pick to the
next (every candidate's penalty only grows), so a run file keeps the chosen order; hits below
the candidates keep their order under them, as a reranker leaves them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from tessera.errors import TesseraError
from tessera.retrieval.hits import Hit
from tessera.retrieval.rerank.base import hit_text

if TYPE_CHECKING:
    from tessera.retrieval.index import Index
    from tessera.retrieval.rerank.encoder import EncoderReranker

DEPTH_FACTOR = 4  # candidates per place when no depth is given (LlamaIndex's mmr_prefetch_factor)
DEFAULT_ENCODER = "minilm"


@dataclass(frozen=True, slots=True)
class Mmr:
    """`weight` (LangChain's lambda_mult): 1 ranks by relevance alone (the ranking unchanged),
    0 by novelty alone. `depth`: candidates taken from the ranking (None: 4 x k)."""

    weight: float
    depth: int | None = None
    encoder: str = DEFAULT_ENCODER

    def __post_init__(self) -> None:
        weight = self.weight
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0.0 <= weight <= 1.0:
            raise TesseraError(f"the MMR weight must be a number in [0, 1], got {weight!r}", field="mmr")
        depth = self.depth
        if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
            raise TesseraError(f"the MMR depth must be a whole number >= 1, got {depth!r}", field="mmr_depth")

    def pool(self, k: int) -> int:
        """How many of the ranking's hits compete for the k places."""
        return max(k, self.depth if self.depth is not None else DEPTH_FACTOR * k)


def as_mmr(mmr: Mmr | float | None, depth: int | None = None) -> Mmr | None:
    """An `Mmr` from a weight (and depth), as the CLI and the service give them."""
    if mmr is None or isinstance(mmr, Mmr):
        if depth is not None and mmr is None:
            raise TesseraError("an MMR depth needs an MMR weight", field="mmr_depth")
        return mmr
    return Mmr(mmr, depth)


def mmr_order(relevance: np.ndarray, vectors: np.ndarray, k: int, weight: float) -> list[tuple[int, float]]:
    """(candidate, MMR value) for the first k picks; `vectors` unit-length rows, ties going to the
    earlier candidate (the ranking's order). A zero row (a blank document's) counts as like
    whatever is picked: nothing is no novelty (cosine 0 to everything made blank documents
    crowd the picks)."""
    n = len(relevance)
    blank = ~np.any(vectors, axis=1)
    likeness = np.full(n, -np.inf)  # each candidate's highest cosine with a chosen one
    free = np.ones(n, dtype=bool)
    picks: list[tuple[int, float]] = []
    for _ in range(min(k, n)):
        penalty = np.where(np.isfinite(likeness), likeness, 0.0)
        value = np.where(free, weight * relevance - (1.0 - weight) * penalty, -np.inf)
        best = int(np.argmax(value))
        picks.append((best, float(value[best])))
        free[best] = False
        likeness = np.maximum(likeness, np.where(blank, 1.0, vectors @ vectors[best]))
    return picks


def rescaled(scores: np.ndarray) -> np.ndarray:
    """Scores mapped to [0, 1] by min-max (all equal: all 1)."""
    low, high = float(scores.min()), float(scores.max())
    return np.ones_like(scores) if high <= low else (scores - low) / (high - low)


def own_vectors(mmr: Mmr, indexes: Sequence[Index]) -> Index | None:
    """The first index built with MMR's encoder (its stored vectors are MMR's), if any."""
    from tessera.models.registry import canonical_spec

    wanted = canonical_spec(mmr.encoder)
    return next(
        (i for i in indexes if i.manifest.encoder and canonical_spec(i.manifest.encoder) == wanted), None
    )


def _embedder(mmr: Mmr) -> EncoderReranker:
    """MMR's encoder (loaded once per process, `load_reranker`), which must make one vector."""
    from tessera.retrieval.rerank import load_reranker
    from tessera.retrieval.rerank.encoder import EncoderReranker

    embedder = load_reranker(mmr.encoder)
    if not isinstance(embedder, EncoderReranker) or getattr(embedder.encoder, "multi_vector", False):
        raise TesseraError(f"MMR needs a single-vector encoder, not '{mmr.encoder}'", field="mmr_encoder")
    return embedder


def diversify(
    mmr: Mmr, rows: Sequence[Sequence[Hit]], k: int, indexes: Sequence[Index] = ()
) -> list[list[Hit]]:
    """Each row's top `mmr.pool(k)` in MMR order (its first k are the k picks), then the rest
    as they were, below them; ranks numbered again. Hits need their text (`Index.with_text`),
    unless one of `indexes` (those searched) holds MMR's vectors; the query is not read:
    relevance is the ranking's own."""
    source = own_vectors(mmr, indexes)
    # An index built with MMR's encoder lends its vectors: the encoder is loaded only for hits
    # it lacks (a service searching a MiniLM index holds no second MiniLM).
    embedder = _embedder(mmr) if source is None else None
    out = []
    for row in rows:
        pool, tail = list(row[: mmr.pool(k)]), list(row[mmr.pool(k) :])
        if not pool:
            out.append([])
            continue
        vectors = source.stored_vectors([h.doc_id for h in pool]) if source is not None else None
        if vectors is None:
            embedder = embedder or _embedder(mmr)
            vectors = np.stack(embedder.doc_vectors([hit_text(h) for h in pool]))
        vectors = vectors.astype(np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        relevance = rescaled(np.array([h.score for h in pool], dtype=np.float64))
        picked, last = [], np.inf
        for i, value in mmr_order(relevance, vectors, len(pool), mmr.weight):
            last = min(value, np.nextafter(last, -np.inf))  # strictly falling: run files sort by score
            picked.append(replace(pool[i], score=last))
        picked += [replace(h, score=last - n) for n, h in enumerate(tail, start=1)]
        out.append([replace(h, rank=rank) for rank, h in enumerate(picked, start=1)])
    return out
