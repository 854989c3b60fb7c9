"""LangChain over Tessera: a retriever over one index or several fused, Tessera's encoders as
LangChain embeddings, and its rerankers and RAG compressors (CRAG, TCRA) as document
compressors. Needs `langchain-core` (`pip install 'tessera[langchain]'`).

    from tessera.integrations.langchain import TesseraRetriever
    retriever = TesseraRetriever.from_paths("indexes/cran-minilm", "indexes/cran-bm25", k=5)
    docs = retriever.invoke("boundary layer transition")   # or .batch, .ainvoke, a chain's step

`TesseraVectorStore` (langchain_vectorstore.py) is LangChain's vector store over one index directory.

The retriever is `search_one`, what `tessera search "QUERY"` and RAG retrieve: its `options` are
that function's keywords (`fusion`, `weights`, `depth`, `reranker`, `rerank_depth`, `filter`,
`mmr`, `per_document`), checked when the retriever is made. A hit becomes a `Document` whose `id`
is the document's id, whose content is the best passage of a chunked index or else the document's
text, and whose metadata are `common.hit_metadata`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun, Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr

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
from tessera.integrations.langchain_vectorstore import TesseraVectorStore
from tessera.retrieval.index import Index, load_indexes
from tessera.retrieval.query_set import search_one
from tessera.retrieval.rerank import Reranker, load_reranker

__all__ = [
    "TesseraCompressor",
    "TesseraEmbeddings",
    "TesseraReranker",
    "TesseraRetriever",
    "TesseraVectorStore",
]


class TesseraRetriever(BaseRetriever):
    """The top `k` of one index, or of several fused (RRF unless `options` say otherwise)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    indexes: list[Index]
    k: int = 10
    options: dict[str, Any] = Field(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        check_retriever(self.indexes, self.k, self.options)

    @classmethod
    def from_paths(
        cls, *paths: str | Path, search_params: dict[str, float | str] | None = None, **fields: Any
    ) -> TesseraRetriever:
        """Open index directories (`search_params`, e.g. nprobe, to the indexes of their kind)."""
        return cls(indexes=load_indexes(paths, search_params), **fields)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [
            Document(id=hit.doc_id, page_content=content(hit), metadata=hit_metadata(hit))
            for hit in search_one(self.indexes, query, self.k, **self.options)
        ]


class TesseraEmbeddings(Embeddings):
    """Any single-vector Tessera encoder spec (`minilm`, `minilm@onnx-int8`, a trained folder,
    `llm:smollm2`, `m2:PATH`) as LangChain embeddings: documents and queries each through their
    own side of the encoder, so an asymmetric model (a query tower, a prompt) stays asymmetric."""

    def __init__(self, spec: str = "minilm") -> None:
        self.spec = spec
        self.encoder = single_vector_encoder(spec)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return self.encoder.encode_docs(list(texts)).tolist() if texts else []

    def embed_query(self, text: str) -> list[float]:
        return self.encoder.encode_queries([text])[0].tolist()


class TesseraReranker(BaseDocumentCompressor):
    """A Tessera reranker spec (`minilm`, `colbert:PATH`, `cross-encoder:NAME_OR_URL`, `qlm`) as a
    LangChain document compressor (`ContextualCompressionRetriever`, or a chain's step): the
    `top_n` documents it scores best, copies with `relevance_score` in their metadata, as
    LangChain's own rerankers give them."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    spec: str = "minilm"
    top_n: int | None = 3
    _reranker: Reranker = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        check_top_n(self.top_n)
        self._reranker = load_reranker(self.spec)

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        texts = [doc.page_content for doc in documents]
        return [
            documents[i].model_copy(update={"metadata": {**documents[i].metadata, "relevance_score": score}})
            for i, score in reranked(self._reranker, query, texts, self.top_n)
        ]


class TesseraCompressor(BaseDocumentCompressor):
    """A Tessera RAG compressor (`crag`, `tcra-summary`, `tcra-semantic`, `truncation`, with
    `options` and a token `budget`, as `tessera rag --compress`) as a LangChain document
    compressor: the retrieved documents, best first, become fewer tokens of context. A block from
    one document keeps its metadata; every block lists `sources`, the ids (else positions) of the
    documents it came from."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    compress: str = "crag"
    budget: int | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    _compressor: Any = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        self._compressor = context_compressor(self.compress, self.options, self.budget)

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        texts = [doc.page_content for doc in documents]
        out = []
        for text, sources in compressed(self._compressor, self.budget, query, texts):
            metadata = dict(documents[sources[0]].metadata) if len(sources) == 1 else {}
            metadata["sources"] = [documents[i].id if documents[i].id is not None else i for i in sources]
            out.append(Document(page_content=text, metadata=metadata))
        return out
