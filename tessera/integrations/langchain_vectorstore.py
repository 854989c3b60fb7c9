"""LangChain's `VectorStore` over one Tessera index directory (`store.IndexStore`): add, upsert,
delete, get by id, search with metadata filters, MMR, and `as_retriever()`, on any index kind
Tessera builds; it passes LangChain's standard vector store tests (langchain-tests).

    from tessera.integrations.langchain import TesseraVectorStore
    store = TesseraVectorStore("indexes/notes", encoder="minilm")   # empty until the first add
    store.add_documents(docs)                                        # ids: Document.id, else new
    store.similarity_search("boundary layer", k=4, filter={"year": {"$gte": 1958}})

Texts are encoded by the index's own encoder, not by a LangChain `Embeddings` (`from_texts` takes
a `TesseraEmbeddings` for its spec). A document's `page_content` is its text and its metadata
is what was given (plus `title` for a document of a corpus with titles). Scores are the index's:
cosine for Tessera's single-vector encoders (relevance (1 + cosine) / 2); BM25 and token scores
have no fixed range, so those stores give no relevance scores."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from tessera.data.document import Document as Stored
from tessera.errors import TesseraError, string_list
from tessera.integrations.common import content
from tessera.integrations.store import IndexStore, record
from tessera.retrieval.diversify import Mmr
from tessera.retrieval.hits import Hit


class TesseraVectorStore(VectorStore):
    """One index directory as a LangChain vector store (created by the first add when absent)."""

    def __init__(
        self,
        path: str | Path,
        encoder: str | None = None,
        factory: str = "Flat",
        search_params: dict[str, float | str] | None = None,
    ) -> None:
        self.store = IndexStore(path, encoder, factory, search_params)
        self._embeddings: Embeddings | None = None

    @property
    def path(self) -> Path:
        return self.store.path

    @property
    def embeddings(self) -> Embeddings | None:
        """The index's encoder as LangChain embeddings (None for BM25 and token indexes)."""
        if self._embeddings is None and self.store.single_vector:
            from tessera.integrations.langchain import TesseraEmbeddings

            self._embeddings = TesseraEmbeddings(self.store.encoder_spec)
        return self._embeddings

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        path: str | Path | None = None,
        factory: str = "Flat",
        **kwargs: Any,
    ) -> TesseraVectorStore:
        """A store at `path` holding `texts`, encoded with `embedding`'s Tessera spec."""
        from tessera.integrations.langchain import TesseraEmbeddings

        if not isinstance(embedding, TesseraEmbeddings):
            raise TesseraError(
                "a Tessera index encodes with its own encoder: pass TesseraEmbeddings(SPEC), "
                f"not {type(embedding).__name__}",
                field="embedding",
            )
        if path is None:
            raise TesseraError("give path=, the index directory to create", field="path")
        _no_options(kwargs)
        store = cls(path, encoder=embedding.spec, factory=factory)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict] | None = None,
        *,
        ids: list[str | None] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Add texts (an id already stored is replaced); returns their ids, new ones uuid4 hex."""
        _no_options(kwargs)
        texts = string_list(texts, "texts")
        metadatas = [{} for _ in texts] if metadatas is None else list(metadatas)
        ids = [None] * len(texts) if ids is None else list(ids)
        for name, given in (("metadatas", metadatas), ("ids", ids)):
            if len(given) != len(texts):
                raise TesseraError(f"{len(given)} {name} for {len(texts)} texts", field=name)
        ids = [doc_id if doc_id else uuid.uuid4().hex for doc_id in ids]
        rows = enumerate(zip(ids, texts, metadatas, strict=True))
        self.store.upsert([record(*row, where=f"texts[{number}]") for number, row in rows])
        return ids

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Delete these ids (ids not stored are passed over), or every document with None."""
        _no_options(kwargs)
        self.store.delete(ids)
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The stored documents among `ids`, in that order."""
        return [_document(doc) for doc in self.store.get(ids)]

    def similarity_search(
        self, query: str, k: int = 4, filter: dict | None = None, **kwargs: Any
    ) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: dict | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """The top k with the index's scores; `kwargs` are `search_one`'s options (`reranker`,
        `mmr`, `per_document`, ...)."""
        return [(_from_hit(hit), hit.score) for hit in self.store.search(query, k, filter, **kwargs)]

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: dict | None = None, **kwargs: Any
    ) -> list[Document]:
        """The top k for a vector of the index's own space (an index of one vector a document)."""
        if filter is not None or kwargs:
            raise TesseraError("a search by vector takes no filter or options", field="filter")
        return [_from_hit(hit) for hit in self.store.search_vector(embedding, k)]

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: dict | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """MMR over the first `fetch_k` (`retrieval.diversify`; likeness by the index's own vectors
        when it holds one a document, else by MiniLM)."""
        mmr = Mmr(lambda_mult, fetch_k, self.store.likeness_encoder)
        return self.similarity_search(query, k, filter, mmr=mmr, **kwargs)

    def _select_relevance_score_fn(self):
        if not self.store.single_vector:
            raise TesseraError(
                f"'{self.store.encoder_spec}' scores have no fixed range to make relevance of; "
                "use similarity_search_with_score",
                field="score",
            )
        return lambda score: (1.0 + score) / 2.0


def _no_options(kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise TesseraError(f"unknown option {', '.join(map(repr, sorted(kwargs)))}", field="kwargs")


def _with_title(metadata: dict[str, Any] | None, title: str | None) -> dict[str, Any]:
    return {**(metadata or {}), "title": title} if title else dict(metadata or {})


def _document(doc: Stored) -> Document:
    return Document(id=doc.id, page_content=doc.text, metadata=_with_title(doc.metadata, doc.title))


def _from_hit(hit: Hit) -> Document:
    return Document(id=hit.doc_id, page_content=content(hit), metadata=_with_title(hit.metadata, hit.title))
