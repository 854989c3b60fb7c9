"""LlamaIndex's vector store over one Tessera index directory (`store.IndexStore`): nodes added,
replaced by id, deleted by their source document or by id and filter, queried with LlamaIndex's
metadata filters, on any index kind Tessera builds (an index built by `tessera index` too).

    from llama_index.core import StorageContext, VectorStoreIndex
    from tessera.integrations.llama_index import TesseraEmbedding, TesseraVectorStore
    store = TesseraVectorStore("indexes/notes", encoder="minilm")    # empty until the first add
    context = StorageContext.from_defaults(vector_store=store)
    index = VectorStoreIndex.from_documents(docs, storage_context=context,
                                            embed_model=MockEmbedding(embed_dim=1))
    index.as_retriever(similarity_top_k=4).retrieve("boundary layer")

The index encodes node texts and queries with its own encoder (`is_embedding_query` is False, so
a retriever sends the query text and embeds nothing). LlamaIndex still embeds nodes before adding
them, which the store does not read: LlamaIndex's `MockEmbedding` makes that free (a
`TesseraEmbedding` of the same spec would encode every node twice). A node is kept as LlamaIndex's
own vector stores keep it: its text as the document's text, the rest of it (id, relationships,
metadata) as JSON in the metadata beside its flat metadata and `ref_doc_id`, so a query returns
the node that was added. Hits of a corpus indexed by Tessera become `TextNode`s with their
metadata and title. Filters translate to Tessera's (data/metadata.py); `text_match`, `is_empty`
and `not` have no equivalent and are refused, naming the filter."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llama_index.core.schema import BaseNode, MetadataMode, TextNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict
from pydantic import PrivateAttr

from tessera.errors import TesseraError, string_list
from tessera.integrations.common import content
from tessera.integrations.store import IndexStore, record
from tessera.retrieval.diversify import Mmr
from tessera.retrieval.hits import Hit

NODE = "_node_content"  # where LlamaIndex's vector stores keep the node's JSON
OPERATORS = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
    FilterOperator.ANY: "$in",  # a list field: any of its elements among the values
    FilterOperator.CONTAINS: "$eq",  # a list field: one of its elements equal
}


class TesseraVectorStore(BasePydanticVectorStore):
    """One index directory as a LlamaIndex vector store (created by the first add when absent)."""

    stores_text: bool = True
    is_embedding_query: bool = False
    flat_metadata: bool = True
    _store: IndexStore = PrivateAttr()

    def __init__(
        self,
        path: str | Path,
        encoder: str | None = None,
        factory: str = "Flat",
        search_params: dict[str, float | str] | None = None,
        **fields: Any,
    ) -> None:
        super().__init__(**fields)
        self._store = IndexStore(path, encoder, factory, search_params)

    @classmethod
    def class_name(cls) -> str:
        return "TesseraVectorStore"

    @property
    def client(self) -> IndexStore:
        return self._store

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Add nodes (a node id already stored is replaced); returns their ids."""
        records = [
            record(
                node.node_id,
                node.get_content(metadata_mode=MetadataMode.NONE),
                node_to_metadata_dict(node, remove_text=True),
                where=f"nodes[{number}]",
            )
            for number, node in enumerate(nodes)
        ]
        self._store.upsert(records)
        return [node.node_id for node in nodes]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of the source document `ref_doc_id`."""
        self._store.delete(self._store.matching({"ref_doc_id": ref_doc_id}))

    def delete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        self._store.delete(self._selected(node_ids, filters))

    def clear(self) -> None:
        self._store.delete(None)

    def get_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None
    ) -> list[BaseNode]:
        """The stored nodes among `node_ids` (in that order) that `filters` select."""
        return [
            _node(doc.id, doc.text, doc.metadata, doc.title)
            for doc in self._store.get(self._selected(node_ids, filters))
        ]

    def _selected(self, node_ids: list[str] | None, filters: MetadataFilters | None) -> list[str]:
        chosen = to_filter(filters)
        node_ids = None if node_ids is None else string_list(node_ids, "node_ids")
        if chosen is None:
            return node_ids if node_ids is not None else self._store.ids()
        matching = set(self._store.matching(chosen))
        return [i for i in node_ids if i in matching] if node_ids is not None else sorted(matching)

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """The top `similarity_top_k` for the query text (or, without one, for its embedding in
        the index's own space), among the `node_ids` when it names some; `kwargs` are
        `search_one`'s options (`reranker`, ...)."""
        chosen = to_filter(query.filters)
        if query.doc_ids:
            by_source = {"ref_doc_id": {"$in": list(query.doc_ids)}}
            chosen = by_source if chosen is None else {"$and": [chosen, by_source]}
        if query.node_ids:  # LlamaIndex's retriever sends [] for none
            kwargs["doc_ids"] = string_list(query.node_ids, "node_ids")
        threshold = kwargs.pop("mmr_threshold", None)  # vector_store_kwargs, as SimpleVectorStore reads it
        if query.mode == VectorStoreQueryMode.MMR:
            weight = next((w for w in (query.mmr_threshold, threshold) if w is not None), 0.5)
            kwargs["mmr"] = Mmr(weight, None, self._store.likeness_encoder)
        elif query.mode != VectorStoreQueryMode.DEFAULT:
            raise TesseraError(
                f"query mode '{query.mode.value}' is not supported (a hybrid is a TesseraRetriever "
                "over several indexes)",
                field="mode",
            )
        if query.query_str:
            hits = self._store.search(query.query_str, query.similarity_top_k, chosen, **kwargs)
        elif query.query_embedding is not None and chosen is None and not kwargs:
            hits = self._store.search_vector(query.query_embedding, query.similarity_top_k)
        else:
            raise TesseraError(
                "a query needs its text (filters and options search by text)", field="query_str"
            )
        return VectorStoreQueryResult(
            nodes=[_hit_node(hit) for hit in hits],
            similarities=[hit.score for hit in hits],
            ids=[hit.doc_id for hit in hits],
        )


def to_filter(filters: MetadataFilters | None) -> dict[str, Any] | None:
    """LlamaIndex's metadata filters as a Tessera filter (None for none)."""
    if filters is None or not filters.filters:
        return None
    parts = []
    for item in filters.filters:
        if isinstance(item, MetadataFilters):
            nested = to_filter(item)
            if nested is not None:
                parts.append(nested)
        elif item.operator == FilterOperator.ALL:
            parts.append({"$and": [{item.key: value} for value in item.value]})
        elif item.operator in OPERATORS:
            parts.append({item.key: {OPERATORS[item.operator]: item.value}})
        else:
            raise TesseraError(
                f"the '{item.operator.value}' filter has no Tessera equivalent", field=f"filters.{item.key}"
            )
    if filters.condition == FilterCondition.NOT:
        raise TesseraError("the 'not' condition has no Tessera equivalent", field="filters.condition")
    if len(parts) == 1:
        return parts[0]
    return {"$or" if filters.condition == FilterCondition.OR else "$and": parts}


def _node(doc_id: str, text: str, metadata: dict[str, Any] | None, title: str | None) -> BaseNode:
    """The node that was added, or a TextNode for a document a corpus gave the index."""
    metadata = dict(metadata or {})
    if NODE in metadata:
        return metadata_dict_to_node(metadata, text=text)
    return TextNode(id_=doc_id, text=text, metadata={**metadata, "title": title} if title else metadata)


def _hit_node(hit: Hit) -> BaseNode:
    return _node(hit.doc_id, content(hit), hit.metadata, hit.title)
