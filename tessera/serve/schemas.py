"""Request bodies and the hit shape of the JSON API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tessera.retrieval.hits import Hit
from tessera.serve.snippets import snippet


class SearchBody(BaseModel):
    """`POST /v1/search`: several queries at once; `indexes` (two or more) fuses them by `fusion`
    (rrf, or wsum with one weight per index, equal when absent)."""

    model_config = ConfigDict(extra="forbid")
    queries: list[str] = Field(min_length=1)
    k: int = 10
    index: str | None = None
    indexes: list[str] | None = None
    params: dict[str, float | str] = Field(default_factory=dict)  # search parameters, e.g. nprobe
    doc_ids: list[str] | None = None  # rank only these documents
    filter: dict[str, Any] | None = None  # rank only documents whose metadata match (data/metadata.py)
    depth: int = Field(default=100, ge=1)  # fused search: hits taken from each index
    rrf_k: int = Field(default=60, ge=0)  # RRF's constant: 1 / (rrf_k + rank)
    fusion: str = "rrf"
    weights: list[float] | None = None
    text: bool = True  # titles and snippets; False: ids and scores only
    rerank: bool = False  # the service's reranker (`tessera serve --rerank`) over the top rerank_depth
    rerank_depth: int = Field(default=100, ge=1)
    mmr: float | None = Field(default=None, ge=0, le=1)  # MMR weight (retrieval.diversify)
    mmr_depth: int | None = Field(default=None, ge=1)  # its candidates (default 4 x k)


class RagBody(BaseModel):
    """`POST /v1/rag`: the RAG pipeline's options (tessera.rag.prepare); `indexes` (two or more)
    retrieves from them fused, as `POST /v1/search` does."""

    model_config = ConfigDict(extra="forbid")
    query: str
    search_query: str | None = None  # searched instead of the query (a follow-up's; prepare's)
    k: int = 10
    index: str | None = None
    indexes: list[str] | None = None
    depth: int = Field(default=100, ge=1)  # fused retrieval: hits taken from each index
    fusion: str = "rrf"
    weights: list[float] | None = None
    params: dict[str, float | str] = Field(default_factory=dict)  # search parameters, as /v1/search's
    rerank: bool = False  # as /v1/search's
    rerank_depth: int = Field(default=100, ge=1)
    filter: dict[str, Any] | None = None  # as /v1/search's
    mmr: float | None = Field(default=None, ge=0, le=1)  # as /v1/search's
    mmr_depth: int | None = Field(default=None, ge=1)
    per_document: int | None = Field(default=None, ge=1)  # a chunked index's passages (prepare's)
    compress: str = "none"
    budget: int | None = None
    order: str = "rank"
    stream: bool = False
    max_new_tokens: int = Field(default=256, ge=1, le=4096)


def hit_json(hit: Hit, query: str) -> dict[str, Any]:
    """One hit: id, score and rank always; title and a snippet (of the best passage in a chunked
    index) when the text was fetched."""
    out: dict[str, Any] = {"doc_id": hit.doc_id, "score": hit.score, "rank": hit.rank}
    if hit.text is not None:
        out["title"] = hit.title or ""
        out["snippet"] = snippet(hit.passage or hit.text, query)
        if hit.metadata:
            out["metadata"] = hit.metadata
    return out
