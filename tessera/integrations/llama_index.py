"""LlamaIndex over Tessera: a retriever over one index or several fused, and Tessera's encoders as
a LlamaIndex embedding model. Needs `llama-index-core` (`pip install 'tessera[llama-index]'`).

    from tessera.integrations.llama_index import TesseraRetriever
    retriever = TesseraRetriever.from_paths("indexes/cran-minilm", "indexes/cran-bm25", k=5)
    nodes = retriever.retrieve("boundary layer transition")
    engine = RetrieverQueryEngine.from_args(retriever, llm=...)   # answers from Tessera's hits

`TesseraVectorStore` (llama_index_vectorstore.py) is LlamaIndex's vector store over one index directory.

The retriever is `search_one`, as in the LangChain adapter (the same `options`, checked when it
is made). A hit becomes a `NodeWithScore`: a `TextNode` whose id is the document's id, whose text
is the best passage of a chunked index or else the document's text, with `common.hit_metadata`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from pydantic import PrivateAttr

from tessera.integrations.common import (
    check_retriever,
    content,
    hit_metadata,
    single_vector_encoder,
)
from tessera.integrations.llama_index_vectorstore import TesseraVectorStore
from tessera.models.encoder import Encoder
from tessera.retrieval.index import Index, load_indexes
from tessera.retrieval.query_set import search_one

__all__ = ["TesseraEmbedding", "TesseraRetriever", "TesseraVectorStore"]


class TesseraRetriever(BaseRetriever):
    """The top `k` of one index, or of several fused (RRF unless `options` say otherwise)."""

    def __init__(self, indexes: list[Index], k: int = 10, options: dict[str, Any] | None = None) -> None:
        options = dict(options or {})
        check_retriever(indexes, k, options)
        self.indexes, self.k, self.options = list(indexes), k, options
        super().__init__()

    @classmethod
    def from_paths(
        cls, *paths: str | Path, search_params: dict[str, float | str] | None = None, **fields: Any
    ) -> TesseraRetriever:
        """Open index directories (`search_params`, e.g. nprobe, to the indexes of their kind)."""
        return cls(load_indexes(paths, search_params), **fields)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return [
            NodeWithScore(
                node=TextNode(id_=hit.doc_id, text=content(hit), metadata=hit_metadata(hit)), score=hit.score
            )
            for hit in search_one(self.indexes, query_bundle.query_str, self.k, **self.options)
        ]


class TesseraEmbedding(BaseEmbedding):
    """Any single-vector Tessera encoder spec as a LlamaIndex embedding model; queries and texts
    each through their own side of the encoder."""

    _encoder: Encoder = PrivateAttr()

    def __init__(self, spec: str = "minilm", **fields: Any) -> None:
        super().__init__(model_name=spec, **fields)
        self._encoder = single_vector_encoder(spec)

    @classmethod
    def class_name(cls) -> str:
        return "TesseraEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encoder.encode_queries([query])[0].tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encoder.encode_docs(list(texts)).tolist()
