"""`POST /v1/rag`: the RAG pipeline (tessera.rag.pipeline) as JSON or a `text/event-stream`.

Retrieval and compression run on the index's thread, generation on a thread of its own, so a
long answer never holds up searches. Stream events: `sources` (the retrieved passages and token
counts), `token` (`{"text": ...}` per piece), then `done` (`{"answer": ...}`) or `error`."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from fastapi.responses import JSONResponse, StreamingResponse

from tessera.errors import TesseraError
from tessera.rag.generators import Generator
from tessera.rag.pipeline import RagPrompt, prepare
from tessera.rag.tokens import Message
from tessera.retrieval.diversify import as_mmr
from tessera.retrieval.fusion import check_retrieval
from tessera.retrieval.index import check_search
from tessera.retrieval.query_set import check_per_document, passages_per_document
from tessera.serve.pool import IndexPool
from tessera.serve.reranking import RerankService
from tessera.serve.schemas import RagBody

_END = object()
T = TypeVar("T")


def _summary(prompt: RagPrompt) -> dict[str, Any]:
    return {
        "query": prompt.question,
        **({"search_query": prompt.search_query} if prompt.search_query is not None else {}),
        "sources": prompt.sources,
        "context": [{"text": b.text, "sources": list(b.sources)} for b in prompt.blocks],
        "plain_tokens": prompt.plain_tokens,
        "prompt_tokens": prompt.prompt_tokens,
        "timings": prompt.timings,
    }


def _event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


class RagService:
    def __init__(self, pool: IndexPool, generator: Generator | None, reranking: RerankService) -> None:
        self.pool = pool
        self.generator = generator
        self.reranking = reranking
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="generator")

    async def answer(self, body: RagBody) -> JSONResponse | StreamingResponse:
        prompt = await self.prompt(body)
        if body.stream:
            return StreamingResponse(
                self._stream(prompt, body.max_new_tokens), media_type="text/event-stream"
            )
        text = None
        if self.generator is not None:
            text = await self.generate(prompt.messages, body.max_new_tokens)
        return JSONResponse({**_summary(prompt), "answer": text, "generator": self.generator_name()})

    async def generate(self, messages: list, max_new_tokens: int) -> str:
        """The whole answer, on the generator's thread."""
        return await self.on_generator(self.generator.generate, messages, max_new_tokens=max_new_tokens)

    async def on_generator(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`call` on the generator's thread (what may run the generator: answers, rewrites)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, partial(call, *args, **kwargs))

    async def prompt(self, body: RagBody, conversation: Sequence[Message] = ()) -> RagPrompt:
        """Retrieve (fused, reranked, diversified, filtered as asked) and build the prompt (in
        `conversation`, the chat the question ends, when one is given)."""
        check_search([body.query], body.k)
        query = body.query if body.search_query is None else body.search_query
        if not query.strip():
            raise TesseraError("the search query is empty", field="search_query")
        names = self.pool.names(body.index, body.indexes)
        check_retrieval(len(names) - 1, body.fusion, body.weights)
        diversity = as_mmr(body.mmr, body.mmr_depth)
        first = self.reranking.first_stage_k(body.rerank, body.k, body.rerank_depth, diversity)
        retrieved = None
        restrict = await self.pool.restriction(names[0], body.filter, None)
        per_document = body.per_document
        served = self.pool.get(names[0])
        if per_document is None:
            where = (restrict or {}).get("filter")
            per_document = await self.pool.run(
                served, passages_per_document, served.index, body.k, where, len(names) > 1
            )
        check_per_document(per_document, len(names), served.index)
        if len(names) > 1:
            depth = max(body.depth, first)
            fused = await self.pool.fused(
                names,
                [query],
                first,
                depth,
                with_text=True,
                params=body.params,
                fusion=body.fusion,
                weights=body.weights,
                restrict=restrict,
            )
            retrieved = fused[0]
        elif body.params or body.rerank or restrict or diversity is not None:  # a variant (a few kept)
            rows = await self.pool.search(names[0], [query], first, True, body.params, restrict, per_document)
            retrieved = rows[0]
        if body.rerank or diversity is not None:
            depth = body.rerank_depth if body.rerank else None
            searched = [self.pool.get(name).index for name in names]
            finished = await self.reranking.finish(
                [query], [retrieved], body.k, True, depth, diversity, searched
            )
            retrieved = finished[0]
        served = self.pool.get(names[0])
        prompt: RagPrompt = await self.pool.run(
            served,
            partial(
                prepare,
                served.index,
                body.query,
                body.k,
                body.compress,
                body.budget,
                body.order,
                self.generator,
                retrieved=retrieved,
                per_document=per_document,
                search_query=body.search_query,
                conversation=conversation,
            ),
        )
        return prompt

    def generator_name(self) -> str | None:
        return self.generator.name if self.generator is not None else None

    async def _stream(self, prompt: RagPrompt, max_new_tokens: int) -> AsyncIterator[bytes]:
        yield _event("sources", {**_summary(prompt), "generator": self.generator_name()})
        if self.generator is None:
            yield _event("done", {"answer": None})
            return
        answer: list[str] = []
        async for piece in self.pieces(prompt.messages, max_new_tokens):
            if isinstance(piece, Exception):
                yield _event("error", {"error": str(piece)})
                return
            answer.append(piece)
            yield _event("token", {"text": piece})
        yield _event("done", {"answer": "".join(answer)})

    async def pieces(self, messages: list, max_new_tokens: int) -> AsyncIterator[str | Exception]:
        """The answer as the generator streams it, on the generator's thread; a failure arrives
        as the last item (for the client to see as an event, not a broken stream). Closing the
        iterator early (the client went away) stops the generation."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def produce() -> None:
            try:
                for piece in self.generator.stream(messages, max_new_tokens=max_new_tokens):
                    if stop.is_set():
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, piece)
            except Exception as exc:
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            loop.call_soon_threadsafe(queue.put_nowait, _END)

        loop.run_in_executor(self.executor, produce)
        try:
            while (piece := await queue.get()) is not _END:
                yield piece
                if isinstance(piece, Exception):
                    return
        finally:
            stop.set()

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
