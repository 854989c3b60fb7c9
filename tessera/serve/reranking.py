"""The service's second stages, run on their own thread: its reranker (`tessera serve --rerank
SPEC`, loaded once at start; a request asks for it with `"rerank": true` but never names a
model, so a client cannot make the service load one) and MMR (`"mmr": WEIGHT`, over the bundled
MiniLM, `retrieval.diversify`)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from tessera.retrieval.diversify import Mmr, diversify
from tessera.retrieval.hits import Hit
from tessera.retrieval.index import Index
from tessera.retrieval.query_set import first_stage_depth
from tessera.retrieval.rerank import Reranker, load_reranker, rerank
from tessera.serve.errors import ApiError


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
            raise ApiError(400, "field 'rerank': this service has no reranker (start it with --rerank SPEC)")
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

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
