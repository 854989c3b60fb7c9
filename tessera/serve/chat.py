"""`POST /v1/chat/completions` and `GET /v1/models`: RAG behind OpenAI's chat API.

Chat front ends and SDKs that speak OpenAI's API (the `openai` client with `base_url`, chat UIs
that take an OpenAI-compatible URL) talk to a served index as to a model: `model` names the
index, the last user message is the question, the answer comes from the service's generator
(`tessera serve --generator`) over the retrieved context. Earlier turns stay in the
conversation, between the RAG system prompt (the client's system messages appended to it) and
the final user turn, which carries the context; so a follow-up question is answered with its
history. What is searched for it is `follow_up`'s choice (rag/conversation.py): its own words
(`last`, the default), the earlier user turns with it (`turns`), or the generator's standalone
rewrite with it (`rewrite`); a request that names none (chat UIs cannot) gets `tessera serve
--follow-up`'s; the response's `search_query` says what was searched. Streaming
sends OpenAI's `chat.completion.chunk` events and `data: [DONE]`. Every RAG option of `POST
/v1/rag` (`k`, `indexes`, `depth`, `fusion`, `weights`, `params`, `compress`, `budget`, `order`,
`filter`, `per_document`, `mmr`, `mmr_depth`, `rerank`, `rerank_depth`) and `follow_up` may ride
along (the `openai` client's `extra_body`); the response adds `sources`,
the passages the answer was built from. OpenAI's sampling fields (temperature, top_p, ...) are
accepted and not used: generation is greedy.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ConfigDict, Field

from tessera.rag.conversation import DEFAULT_FOLLOW_UP, check_follow_up, search_query
from tessera.rag.messages import content_text
from tessera.rag.tokens import Message
from tessera.serve.errors import ApiError
from tessera.serve.pool import IndexPool
from tessera.serve.rag import RagService
from tessera.serve.schemas import DEFAULT_K, JsonObject, RagBody, RequestBody

DEFAULT_MAX_TOKENS = 256


class ChatMessage(JsonObject):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict[str, Any]] | None = None

    @property
    def text(self) -> str:
        """The message's text; content parts other than text (images) are not read."""
        return content_text(self.content)


class ChatBody(RequestBody):
    model_config = ConfigDict(extra="ignore")  # OpenAI's sampling and tool fields: not used
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=4096)
    n: int = Field(default=1, ge=1, le=1)
    # Tessera's RAG options, as POST /v1/rag takes them (RAG_OPTIONS: every one is handed on).
    k: int = DEFAULT_K
    indexes: list[str] | None = None  # two or more: retrieved from them fused; `model` is then not read
    depth: int = Field(default=100, ge=1)
    fusion: str = "rrf"
    weights: list[float] | None = None
    params: dict[str, float | str] = Field(default_factory=dict)
    compress: str = "none"
    budget: int | None = None
    order: str = "rank"
    filter: dict[str, Any] | None = None
    per_document: int | None = Field(default=None, ge=1)
    mmr: float | None = Field(default=None, ge=0, le=1)
    mmr_depth: int | None = Field(default=None, ge=1)
    rerank: bool = False
    rerank_depth: int = Field(default=100, ge=1)
    follow_up: str | None = None  # None: the service's (`tessera serve --follow-up`)

    def conversation(self) -> list[Message]:
        """The messages as the RAG pipeline takes them (text content only)."""
        return [{"role": m.role, "content": m.text} for m in self.messages]


# ChatBody's fields that are RagBody's retrieval and compression options too (`stream` is the
# chat's own); extra="ignore" (for OpenAI's sampling fields) would drop a forgotten one silently
RAG_OPTIONS = tuple(
    name for name in ChatBody.model_fields if name in RagBody.model_fields and name != "stream"
)


class ChatService:
    def __init__(self, pool: IndexPool, rag: RagService, follow_up: str = DEFAULT_FOLLOW_UP) -> None:
        self.pool = pool
        self.rag = rag
        self.follow_up = follow_up

    def models(self) -> dict[str, Any]:
        self.pool.get(None)  # 503 while loading
        return {"object": "list", "data": [self.model(name) for name in self.pool.served]}

    def model(self, name: str) -> dict[str, Any]:
        """A served index as an OpenAI model; 404 for a name not served."""
        self.pool.get(None)  # 503 while loading
        if name not in self.pool.served:
            raise ApiError(404, f"model '{name}' does not exist: serving {', '.join(self.pool.served)}")
        return {"id": name, "object": "model", "created": 0, "owned_by": "tessera"}

    async def complete(self, body: ChatBody) -> JSONResponse | StreamingResponse:
        if self.rag.generator is None:
            raise ApiError(
                400,
                "this service has no generator: start it with `tessera serve --generator local` (or a URL)",
            )
        name = self.pool.get(body.indexes[0] if body.indexes else body.model).name
        follow_up = body.follow_up or self.follow_up
        check_follow_up(follow_up, self.rag.generator is not None)
        conversation = body.conversation()
        turns = [m for m in conversation if m["role"] in ("user", "assistant")]
        # search_query refuses a conversation that does not end with the user's question
        if follow_up == "rewrite":  # the generator's work, on its thread
            searched = await self.rag.on_generator(search_query, turns, follow_up, self.rag.generator)
        else:
            searched = search_query(turns, follow_up)
        rag = RagBody(
            query=turns[-1]["content"],
            search_query=searched,
            index=None if body.indexes else name,
            **{option: getattr(body, option) for option in RAG_OPTIONS},
        )
        prompt = await self.rag.prompt(rag, conversation)
        messages = prompt.messages
        max_tokens = body.max_completion_tokens or body.max_tokens or DEFAULT_MAX_TOKENS
        reply = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": name}
        if body.stream:
            return StreamingResponse(
                self._chunks(
                    reply, messages, max_tokens, {"sources": prompt.sources, "search_query": searched}
                ),
                media_type="text/event-stream",
            )
        answer = await self.rag.generate(messages, max_tokens)
        tokens = self.rag.generator.tokens
        used, made = tokens.count_messages(messages), tokens.count(answer)
        return JSONResponse(
            {
                **reply,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer},
                        "finish_reason": "length" if made >= max_tokens else "stop",
                    }
                ],
                "usage": {"prompt_tokens": used, "completion_tokens": made, "total_tokens": used + made},
                "sources": prompt.sources,
                "search_query": searched,
            }
        )

    async def _chunks(
        self, reply: dict[str, Any], messages: list[Message], max_tokens: int, first: dict[str, Any]
    ) -> AsyncIterator[bytes]:
        """OpenAI's chunks; the first also carries `first` (the sources, what was searched)."""

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
            body = {**reply, "object": "chat.completion.chunk", **extra}
            body["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
            return f"data: {json.dumps(body)}\n\n".encode()

        yield chunk({"role": "assistant", "content": ""}, **first)
        answer = []
        async for piece in self.rag.pieces(messages, max_tokens):
            if isinstance(piece, Exception):
                failure = {"error": {"message": str(piece), "type": "generator_error"}}
                yield f"data: {json.dumps(failure)}\n\n".encode()
                return
            answer.append(piece)
            yield chunk({"content": piece})
        made = self.rag.generator.tokens.count("".join(answer))
        yield chunk({}, "length" if made >= max_tokens else "stop")
        yield b"data: [DONE]\n\n"
