"""The service's second stages, run on their own thread: its reranker (`tessera serve --rerank
SPEC`, loaded once at start; a request asks for it with `"rerank": true` but never names a
model, so a client cannot make the service load one) and MMR (`"mmr": WEIGHT`, over the bundled
MiniLM, `retrieval.diversify`).

`POST /v1/rerank` offers the same reranker to texts a client brings, in the request and response
shape of Cohere's and Jina's rerank APIs (which vLLM and text-embeddings-inference serve too), so
their clients and the frameworks' rerankers built on them work unchanged: `query`, `documents`
(strings or `{"text": ...}`), `top_n`, `return_documents`; results best first, each with its
`index` in `documents` and its `relevance_score`, the reranker's own score (a cross-encoder's
logit, an encoder's dot product, a mean log probability), not rescaled to 0-1. `model` is
accepted and not used: the response names the reranker that scored."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from pydantic import ConfigDict, Field

from tessera.retrieval.diversify import Mmr, diversify
from tessera.retrieval.hits import Hit
from tessera.retrieval.index import Index, check_search
from tessera.retrieval.query_set import first_stage_depth
from tessera.retrieval.rerank import Reranker, best_first, load_reranker, rerank
from tessera.serve.errors import ApiError
from tessera.serve.schemas import JsonObject, RequestBody

REFUSED = "this service has no reranker (start it with --rerank SPEC)"


class RerankText(JsonObject):
    model_config = ConfigDict(extra="allow")  # Jina's and Cohere's documents may carry more fields
    text: str


class RerankBody(RequestBody):
    model_config = ConfigDict(extra="forbid")
    query: str
    documents: list[str | RerankText]
    model: str | None = None
    top_n: int | None = Field(default=None, ge=1)
    return_documents: bool = False
    max_chunks_per_doc: int | None = None  # Cohere v1's; accepted and not used


class RerankService:
    def __init__(self, spec: str | None) -> None:
        self.spec = spec
        self.reranker: Reranker | None = None
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="reranker")

    def load(self) -> None:
        if self.spec is not None:
            self.reranker = load_reranker(self.spec)

    def first_stage_k(self, wanted: bool, k: int, depth: int, mmr: Mmr | None = None) -> int:
        """How many hits to search for: `depth` when reranking (refused without a reranker), MMR's
        candidates with `mmr`."""
        if wanted and self.reranker is None:
            raise ApiError(400, f"field 'rerank': {REFUSED}")
        return first_stage_depth(k, wanted, depth, mmr)

    async def finish(
        self,
        queries: Sequence[str],
        rows: list[list[Hit]],
        k: int,
        with_text: bool,
        rerank_depth: int | None = None,
        mmr: Mmr | None = None,
        indexes: Sequence[Index] = (),
    ) -> list[list[Hit]]:
        """Rows searched with text, reranked (given a `rerank_depth`), diversified (given `mmr`;
        `indexes`, those searched, may hold its vectors), cut to `k`; their text dropped unless
        `with_text`."""
        ranked = await asyncio.get_running_loop().run_in_executor(
            self.executor, partial(self._second_stages, queries, rows, k, rerank_depth, mmr, indexes)
        )
        if with_text:
            return [row[:k] for row in ranked]
        return [[h.without_text() for h in row[:k]] for row in ranked]

    def _second_stages(
        self,
        queries: Sequence[str],
        rows: list[list[Hit]],
        k: int,
        rerank_depth: int | None,
        mmr: Mmr | None,
        indexes: Sequence[Index],
    ) -> list[list[Hit]]:
        if rerank_depth is not None:
            rows = rerank(self.reranker, queries, rows, rerank_depth)
        return diversify(mmr, rows, k, indexes) if mmr is not None else rows

    async def rerank_texts(self, body: RerankBody, max_documents: int) -> dict[str, Any]:
        """`POST /v1/rerank`: the texts scored against the query, best first (ties by position)."""
        if self.reranker is None:
            raise ApiError(400, REFUSED)
        check_search([body.query], 1)
        texts = [d if isinstance(d, str) else d.text for d in body.documents]
        if not texts:
            raise ApiError(400, "field 'documents': no document to rerank")
        if len(texts) > max_documents:
            raise ApiError(413, f"{len(texts)} documents; at most {max_documents} per request (--max-k)")
        scores = await asyncio.get_running_loop().run_in_executor(
            self.executor, self.reranker.score, body.query, texts
        )
        order = best_first(scores, body.top_n)
        results = [{"index": i, "relevance_score": float(scores[i])} for i in order]
        if body.return_documents:
            for result in results:
                result["document"] = {"text": texts[result["index"]]}
        return {"id": uuid.uuid4().hex, "model": self.spec, "results": results}

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
