"""Second-stage reranking: a first stage's top `depth` hits scored again by a stronger model.

| spec | reranker |
|---|---|
| an `--encoder` spec: `minilm`, `PATH`, `colbert:PATH`, ... | its own similarity (`encoder.py`) |
| `cross-encoder:NAME_OR_PATH` | a sentence-transformers CrossEncoder (`cross_encoder.py`) |
| `cross-encoder:http(s)://HOST/v1#MODEL` | a rerank endpoint, Cohere's and Jina's shape (`remote.py`) |
| `qlm`, `qlm:LLM` | query likelihood under a causal LM, UPR (`query_likelihood.py`) |

An encoder reranks by the dot product of its vectors, or by exact MaxSim for a multi-vector
model (`colbert:PATH`, `xtr:PATH`); `qlm` defaults to the bundled SmolLM2.

The hits below `depth` keep their order after the reranked ones, so recall at the first stage's
depth is unchanged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import cache

import numpy as np

from tessera.errors import EncoderError, TesseraError
from tessera.openai_http import is_url
from tessera.retrieval.hits import Hit
from tessera.retrieval.rerank.base import Reranker, hit_text

RERANK_DEPTH = 100
CROSS_ENCODER_PREFIX = "cross-encoder:"
QLM = "qlm"

__all__ = [
    "RERANK_DEPTH",
    "Reranker",
    "best_first",
    "check_rerank_depth",
    "check_reranker_spec",
    "load_reranker",
    "rerank",
]


def check_reranker_spec(spec: str) -> None:
    """Refuse what can never rerank, without loading anything (suite systems are checked when
    parsed, before an hour of other work)."""
    from tessera.models.registry import check_known, is_lexical

    if not spec or not spec.strip():
        raise EncoderError("an empty reranker spec", field="rerank")
    if spec.startswith(CROSS_ENCODER_PREFIX) and not spec[len(CROSS_ENCODER_PREFIX) :]:
        raise EncoderError(f"'{spec}' names no model (cross-encoder:NAME_OR_PATH)", field="rerank")
    if is_lexical(spec):
        raise EncoderError(
            "bm25 cannot rerank (it scores from an index); rerank with an encoder, cross-encoder:NAME or qlm",
            field="rerank",
        )
    if not spec.startswith(CROSS_ENCODER_PREFIX) and spec != QLM and not spec.startswith(QLM + ":"):
        check_known(spec, field="rerank")


@cache
def load_reranker(spec: str) -> Reranker:
    """The reranker a spec names (once per process)."""
    check_reranker_spec(spec)
    if spec.startswith(CROSS_ENCODER_PREFIX):
        model = spec[len(CROSS_ENCODER_PREFIX) :]
        if is_url(model):
            from tessera.retrieval.rerank.remote import RemoteReranker

            return RemoteReranker(model, spec)
        from tessera.retrieval.rerank.cross_encoder import CrossEncoderReranker

        return CrossEncoderReranker(model, spec)
    if spec == QLM or spec.startswith(QLM + ":"):
        from tessera.models.causal_lm import DEFAULT_LLM
        from tessera.retrieval.rerank.query_likelihood import QueryLikelihoodReranker

        return QueryLikelihoodReranker(spec[len(QLM) + 1 :] or DEFAULT_LLM, spec)
    from tessera.models.registry import load_encoder
    from tessera.retrieval.rerank.encoder import EncoderReranker

    return EncoderReranker(load_encoder(spec))


def check_rerank_depth(depth: int) -> None:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise TesseraError(f"rerank depth must be a whole number >= 1, got {depth!r}", field="rerank_depth")


def best_first(scores: Sequence[float] | np.ndarray, top_n: int | None = None) -> list[int]:
    """Positions by falling score, ties in their given order; the first `top_n` (None: all)."""
    return sorted(range(len(scores)), key=lambda i: -float(scores[i]))[:top_n]


def rerank(
    reranker: Reranker, queries: Sequence[str], rows: Sequence[Sequence[Hit]], depth: int = RERANK_DEPTH
) -> list[list[Hit]]:
    """Each query's top `depth` hits ordered by the reranker's score (ties keep the first stage's
    order), then the rest as they were; ranks numbered again. Hits need their text
    (`Index.with_text`); a hit without any scores as an empty text."""
    check_rerank_depth(depth)
    ranked = []
    for query, row in zip(queries, rows, strict=True):
        head, tail = list(row[:depth]), list(row[depth:])
        scores = reranker.score(query, [hit_text(h) for h in head])
        order = best_first(scores)
        reordered = [replace(head[i], score=float(scores[i])) for i in order]
        if tail and reordered:
            # below every reranked score, in the first stage's order
            floor = min(h.score for h in reordered)
            tail = [replace(h, score=floor - n) for n, h in enumerate(tail, start=1)]
        ranked.append([replace(h, rank=r) for r, h in enumerate([*reordered, *tail], start=1)])
    return ranked
