"""The service's reranker (`tessera serve --rerank SPEC`), loaded once at start and run on its
own thread: a request asks for it (`"rerank": true`) but never names a model, so a client cannot
make the service load one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from tessera.retrieval.hits import Hit
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

    def first_stage_k(self, wanted: bool, k: int, depth: int) -> int:
        """How many hits to search for: `depth` when reranking (refused without a reranker)."""
        if not wanted:
            return k
        if self.reranker is None:
            raise ApiError(400, "field 'rerank': this service has no reranker (start it with --rerank SPEC)")
        return max(k, depth)

    async def rerank(
        self, queries: Sequence[str], rows: list[list[Hit]], depth: int, k: int, with_text: bool
    ) -> list[list[Hit]]:
        """Rows searched with text, reordered by the reranker and cut to `k`."""
        ranked = await asyncio.get_running_loop().run_in_executor(
            self.executor, partial(rerank, self.reranker, queries, rows, depth)
        )
        if with_text:
            return [row[:k] for row in ranked]
        return [[h.without_text() for h in row[:k]] for row in ranked]

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
