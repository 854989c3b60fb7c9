"""LlamaIndex over Tessera: a retriever over one index or several fused, Tessera's encoders as a
LlamaIndex embedding model, and its rerankers and RAG compressors (CRAG, TCRA) as node
postprocessors. Needs `llama-index-core` (`pip install 'tessera[llama-index]'`).

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
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
from pydantic import Field, PrivateAttr

from tessera.errors import TesseraError
from tessera.integrations.common import (
    check_retriever,
    check_top_n,
    compressed,
    content,
    context_compressor,
    hit_metadata,
    reranked,
    single_vector_encoder,
)
from tessera.integrations.llama_index_vectorstore import TesseraVectorStore
from tessera.models.encoder import Encoder
from tessera.retrieval.index import Index, load_indexes
from tessera.retrieval.query_set import search_one
from tessera.retrieval.rerank import Reranker, load_reranker

__all__ = ["TesseraCompress", "TesseraEmbedding", "TesseraRerank", "TesseraRetriever", "TesseraVectorStore"]


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
            NodeWithScore(node=_node(hit), score=hit.score)
            for hit in search_one(self.indexes, query_bundle.query_str, self.k, **self.options)
        ]


def _query(query_bundle: QueryBundle | None) -> str:
    """The question a postprocessor works for (LlamaIndex may call one without it)."""
    if query_bundle is None:
        raise TesseraError("a postprocessor needs the query", field="query_bundle")
    return query_bundle.query_str


RETRIEVAL_KEYS = ["doc_id", "score", "rank", "offsets"]  # about the search, not the text


def _node(hit) -> TextNode:
    """A hit as a node; its search metadata kept from what embedders, rerankers and LLMs read."""
    return TextNode(
        id_=hit.doc_id,
        text=content(hit),
        metadata=hit_metadata(hit),
        excluded_embed_metadata_keys=RETRIEVAL_KEYS,
        excluded_llm_metadata_keys=RETRIEVAL_KEYS,
    )


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


class TesseraRerank(BaseNodePostprocessor):
    """A Tessera reranker spec (`minilm`, `colbert:PATH`, `cross-encoder:NAME_OR_URL`, `qlm`) as a
    LlamaIndex node postprocessor (a query engine's `node_postprocessors`): the `top_n` nodes it
    scores best (default 2, as LlamaIndex's SentenceTransformerRerank), with its scores. Nodes are
    read as LlamaIndex's rerankers read them (text and the metadata meant for embedding)."""

    spec: str = "minilm"
    top_n: int | None = 2
    _reranker: Reranker = PrivateAttr()

    def __init__(self, spec: str = "minilm", top_n: int | None = 2, **fields: Any) -> None:
        check_top_n(top_n)
        super().__init__(spec=spec, top_n=top_n, **fields)
        self._reranker = load_reranker(spec)

    @classmethod
    def class_name(cls) -> str:
        return "TesseraRerank"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
        return [
            NodeWithScore(node=nodes[i].node, score=score)
            for i, score in reranked(self._reranker, _query(query_bundle), texts, self.top_n)
        ]


class TesseraCompress(BaseNodePostprocessor):
    """A Tessera RAG compressor (`crag`, `tcra-summary`, `tcra-semantic`, `truncation`, with
    `options` and a token `budget`) as a LlamaIndex node postprocessor: the retrieved nodes
    become fewer tokens of context, one node a block (scored by its best source), listing the
    ids of the nodes it came from in `sources`; a block from one node keeps that node's metadata."""

    compress: str = "crag"
    budget: int | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    _compressor: Any = PrivateAttr()

    def __init__(self, compress: str = "crag", budget: int | None = None, **fields: Any) -> None:
        super().__init__(compress=compress, budget=budget, **fields)
        self._compressor = context_compressor(compress, self.options, budget)

    @classmethod
    def class_name(cls) -> str:
        return "TesseraCompress"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        texts = [n.node.get_content(metadata_mode=MetadataMode.NONE) for n in nodes]
        out = []
        for text, sources in compressed(self._compressor, self.budget, _query(query_bundle), texts):
            first = nodes[sources[0]].node
            kept = {} if len(sources) > 1 else first.metadata  # and what embedders and LLMs skip of it
            node = TextNode(
                text=text,
                metadata={**kept, "sources": [nodes[i].node.node_id for i in sources]},
                excluded_embed_metadata_keys=[
                    *(first.excluded_embed_metadata_keys if kept else []),
                    "sources",
                ],
                excluded_llm_metadata_keys=[*(first.excluded_llm_metadata_keys if kept else []), "sources"],
            )
            score = max((nodes[i].score for i in sources if nodes[i].score is not None), default=None)
            out.append(NodeWithScore(node=node, score=score))
        return out
