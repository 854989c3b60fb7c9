"""`POST /v1/embeddings`: the served indexes' encoders behind OpenAI's embeddings API.

Applications that already speak that API (the `openai` client with `base_url`, LangChain's and
LlamaIndex's OpenAI embeddings) get the vectors an index was built with, so what they store
or compare matches what the index searches. `model` names a served index (or its encoder
spec, e.g. `minilm`); `input` is a string or a list of them; `encoding_format` is `float` or
`base64` (little-endian float32, what the `openai` client asks for by default). One field
beyond OpenAI's, as Cohere's and Voyage's APIs have it: `input_type` `document` (default:
the vectors the index stores) or `query` (what its searches encode: a query tower for JPQ
indexes). A text longer than the encoder's window is cut to it, as indexing cuts it; `usage`
counts the encoder's tokens after that cut. Token (ColBERT/XTR) indexes give a vector per
token and BM25 none: both are a 400 naming the index.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field

from tessera.openai_http import DEFAULT_MODEL
from tessera.serve.errors import ApiError
from tessera.serve.pool import IndexPool, Served
from tessera.serve.schemas import RequestBody


class EmbeddingsBody(RequestBody):
    model_config = ConfigDict(extra="forbid")
    input: str | list[str]
    model: str | None = None  # a served index's name, or its encoder spec; default: the first index
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    input_type: Literal["document", "query"] = "document"
    user: str | None = None  # OpenAI's; accepted and ignored


def _served(pool: IndexPool, model: str | None) -> Served:
    """The index a request's `model` names, by name or by its encoder spec; without one the first
    served index that gives embeddings (not a BM25 or token index served before it)."""
    if model is None or (model == DEFAULT_MODEL and model not in pool.served):
        first = pool.get(None)
        return next((served for served in pool.served.values() if _embeds(served)), first)
    if model in pool.served:
        return pool.get(model)
    by_spec = [served for served in pool.served.values() if served.index.manifest.encoder == model]
    if not by_spec:
        names = ", ".join(pool.served)
        raise ApiError(400, f"field 'model': no served index or encoder '{model}' (indexes: {names})")
    return by_spec[0]


def _embeds(served: Served) -> bool:
    encoder = served.index.encoder
    return encoder is not None and not getattr(encoder, "multi_vector", False)


def _encoder(served: Served, input_type: str, cache: dict[str, Any]):
    """The encoder whose vectors the request asks for; a JPQ index's document encoder is loaded
    once (its `Index` holds the query tower)."""
    manifest = served.index.manifest
    encoder = served.index.encoder
    if not _embeds(served):
        kind = "a BM25 index has no vectors" if encoder is None else "a token index has one vector per token"
        raise ApiError(400, f"field 'model': '{served.name}' gives no embeddings ({kind})")
    if input_type == "query" or not manifest.query_encoder:
        return encoder
    if served.name not in cache:
        from tessera.models.registry import load_encoder

        cache[served.name] = load_encoder(manifest.encoder)
    return cache[served.name]


def _tokens(encoder, texts: list[str]) -> int:
    """The encoder's token count of `texts` after its window's cut (0 where it shows no tokenizer)."""
    tokenizer = getattr(encoder, "tokenizer", None)
    window = getattr(encoder, "max_tokens", None)
    if tokenizer is not None and window:
        encoded = tokenizer(texts, add_special_tokens=True, truncation=True, max_length=window)
        return sum(len(ids) for ids in encoded["input_ids"])
    light = getattr(encoder, "texts_tokenizer", None)
    if light is not None:
        return sum(sum(e.attention_mask) for e in light.encode_batch(texts))
    return 0


class EmbeddingService:
    def __init__(self, pool: IndexPool, max_inputs: int) -> None:
        self.pool = pool
        self.max_inputs = max_inputs
        self.document_encoders: dict[str, Any] = {}

    async def embed(self, body: EmbeddingsBody) -> dict[str, Any]:
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        if not texts:
            raise ApiError(400, "field 'input': no text to embed")
        if len(texts) > self.max_inputs:
            raise ApiError(413, f"{len(texts)} inputs; at most {self.max_inputs} per request")
        empty = next((n for n, text in enumerate(texts) if not text.strip()), None)
        if empty is not None:
            raise ApiError(400, f"field 'input': input {empty} is empty")
        served = _served(self.pool, body.model)
        if body.dimensions is not None and body.dimensions != served.index.manifest.dim:
            raise ApiError(
                400,
                f"field 'dimensions': '{served.name}' makes {served.index.manifest.dim}-d vectors "
                f"(its encoder is not trained to be cut), got {body.dimensions}",
            )
        encoder = _encoder(served, body.input_type, self.document_encoders)
        encode = encoder.encode_queries if body.input_type == "query" else encoder.encode_docs
        vectors = np.asarray(await self.pool.run(served, encode, texts), dtype="<f4")
        tokens = await self.pool.run(served, _tokens, encoder, texts)
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": n, "embedding": _encoded(vector, body.encoding_format)}
                for n, vector in enumerate(vectors)
            ],
            "model": served.name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


def _encoded(vector: np.ndarray, encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(vector.tobytes()).decode("ascii")
    return vector.tolist()
