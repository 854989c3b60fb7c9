"""Request bodies and the hit shape of the JSON API."""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from tessera.data.document import text_problem
from tessera.retrieval.hits import Hit
from tessera.serve.snippets import snippet

DEFAULT_K = 10  # hits a request gets when it names no k (cut to `--max-k` when that is lower)


def _lone_surrogate(value: Any, path: str) -> str | None:
    """The first string in a decoded JSON value (keys included) that is not Unicode text, as
    "field 'PATH' holds ...", or None."""
    if isinstance(value, str):
        problem = text_problem(value)
        return f"field '{path}' {problem}" if problem else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        where = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else key
        if isinstance(key, str) and (problem := text_problem(key)):
            return f"a key in '{path or 'the body'}' {problem}"
        if found := _lone_surrogate(item, where):
            return found
    return None


def _takes_whole_numbers(annotation: Any) -> bool:
    """Whether a field's type is `int` (or `int | None`), not a float."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = get_args(annotation)
        return int in members and float not in members
    return annotation is int


class JsonObject(BaseModel):
    """Every JSON object a request holds, the body and the objects in it: types strict, as JSON
    clients expect (`"top_n": true` or `"2"` is a 400, not 1 and 2), a whole number written as a
    float (`10.0`, which Python's `json.dumps` writes for a float) taken where a count belongs,
    and `null` for a field that has a default the same as leaving it out (`"title": null`)."""

    model_config = ConfigDict(strict=True)

    @model_validator(mode="before")
    @classmethod
    def _as_json_means(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        kept = {k: v for k, v in data.items() if v is not None or k not in fields or fields[k].is_required()}
        for key, value in kept.items():
            whole = isinstance(value, float) and value.is_integer()
            if whole and key in fields and _takes_whole_numbers(fields[key].annotation):
                kept[key] = int(value)
        return kept


class RequestBody(JsonObject):
    """Every JSON body's base: JSON may escape a lone UTF-16 surrogate (`\\ud800`), which decodes
    to a str no tokenizer, index or response can encode; one check of the whole body, before its
    fields are read, refuses it as a 400 naming the field, whichever route and field it is in."""

    @model_validator(mode="before")
    @classmethod
    def _unicode_text(cls, data: Any) -> Any:
        if problem := _lone_surrogate(data, ""):
            raise PydanticCustomError("lone_surrogate", problem)
        return data


class SearchBody(RequestBody):
    """`POST /v1/search`: several queries at once; `indexes` (two or more) fuses them by `fusion`
    (rrf, or wsum with one weight per index, equal when absent)."""

    model_config = ConfigDict(extra="forbid")
    queries: list[str] = Field(min_length=1)
    k: int = DEFAULT_K
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


class RagBody(RequestBody):
    """`POST /v1/rag`: the RAG pipeline's options (tessera.rag.prepare); `indexes` (two or more)
    retrieves from them fused, as `POST /v1/search` does."""

    model_config = ConfigDict(extra="forbid")
    query: str
    search_query: str | None = None  # searched instead of the query (a follow-up's; prepare's)
    k: int = DEFAULT_K
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
