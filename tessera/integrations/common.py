"""What every framework adapter shares: its search options checked when it is made, a hit's
metadata as the adapters hand it on, and the rerankers' and RAG compressors' work on a
framework's retrieved texts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tessera.errors import TesseraError
from tessera.models.encoder import Encoder
from tessera.models.registry import load_encoder
from tessera.retrieval.hits import Hit
from tessera.retrieval.index import Index, check_search
from tessera.retrieval.query_set import check_search_one
from tessera.retrieval.rerank import Reranker, best_first

if TYPE_CHECKING:
    from tessera.rag.compressors.base import Compressor


def check_retriever(indexes: Sequence[Index], k: int, options: Mapping[str, Any]) -> None:
    """Wrong options fail when the adapter is made, naming the option, not at the first question."""
    check_search_one(indexes, **options)
    check_search([], k)


def content(hit: Hit) -> str:
    """The best passage of a chunked index's hit, else the document's text."""
    return hit.passage or hit.text or ""


HIT_KEYS = ("doc_id", "title", "score", "rank", "offsets")


def hit_metadata(hit: Hit) -> dict[str, Any]:
    """The document's own metadata, plus `doc_id`, `title`, `score`, `rank` (and a passage's
    `offsets` in its document); a document's own field of one of those names is kept as
    `own_NAME`, not overwritten."""
    own = hit.metadata or {}
    metadata = {key: value for key, value in own.items() if key not in HIT_KEYS}
    for key in HIT_KEYS:
        if key in own:
            kept = f"own_{key}"
            while kept in own or kept in metadata:  # a document holding own_score too
                kept = f"own_{kept}"
            metadata[kept] = own[key]
    metadata |= {"doc_id": hit.doc_id, "title": hit.title, "score": hit.score, "rank": hit.rank}
    if hit.offsets is not None:
        metadata["offsets"] = list(hit.offsets)
    return metadata


def single_vector_encoder(spec: str) -> Encoder:
    """A registry encoder that gives one vector a text (frameworks' embeddings are that)."""
    encoder = load_encoder(spec)
    if encoder.multi_vector:
        raise TesseraError(
            f"'{spec}' makes one vector per token; a framework's embeddings are one vector per text",
            field="spec",
        )
    return encoder


def check_top_n(top_n: int | None) -> None:
    if isinstance(top_n, bool) or (top_n is not None and (not isinstance(top_n, int) or top_n < 1)):
        raise TesseraError(f"must be a whole number >= 1 or None, got {top_n!r}", field="top_n")


def reranked(
    reranker: Reranker, query: str, texts: Sequence[str], top_n: int | None
) -> list[tuple[int, float]]:
    """(position, score) of the `top_n` texts a Tessera reranker scores best, best first (ties in
    their given order), as `POST /v1/rerank` answers."""
    check_top_n(top_n)
    check_search([query], 1)
    scores = reranker.score(query, list(texts)) if texts else []
    return [(i, float(scores[i])) for i in best_first(scores, top_n)]


def context_compressor(compress: str, options: Mapping[str, Any], budget: int | None) -> Compressor | None:
    """A RAG compressor (`crag`, `tcra-summary`, `tcra-semantic`, `truncation`; `none` is None)
    for a framework's retrieved texts: budgets in the bundled LLM's tokens, passages embedded by
    the bundled MiniLM. Wrong options or a budget below 1 token fail here, naming them."""
    from tessera.rag.compressors import make_compressor
    from tessera.rag.compressors.base import check_budget
    from tessera.rag.pipeline import compression_tools

    check_budget(budget)
    try:
        return make_compressor(compress, compression_tools(None, None), **options)
    except TesseraError as exc:  # named as this surface's parameter
        if exc.field != "option":
            raise
        raise TesseraError(exc.message, field="options") from None


def compressed(
    compressor: Compressor | None, budget: int | None, query: str, texts: Sequence[str]
) -> list[tuple[str, list[int]]]:
    """The compressed context, best first: each block's text and the positions of the texts it
    came from (uncompressed without a compressor)."""
    from tessera.rag.passages import Passage

    if compressor is None or not texts:
        return [(text, [i]) for i, text in enumerate(texts)]
    passages = [Passage(str(i), text, rank=i + 1) for i, text in enumerate(texts)]
    blocks = compressor.compress(query, passages, budget)
    return [(block.text, [int(i) for i in block.sources]) for block in blocks]
