"""LlamaIndex's vector store over a Tessera index, with the real llama-index-core: LlamaIndex's
own VectorStoreIndex adds real Cranfield nodes to it and retrieves what an index of the same texts
retrieves, the nodes come back as they were added; LlamaIndex's filters, deletes by source
document, by id and by filter, queries among given node ids, MMR, a query engine, and an index
built by the CLI opened as one."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from tessera.data.corpus import open_corpus
from tessera.errors import TesseraError
from tessera.indexing.builder import build_index
from tessera.retrieval.index import Index

pytest.importorskip("llama_index.core")
from llama_index.core import MockEmbedding, StorageContext, VectorStoreIndex  # noqa: E402
from llama_index.core.llms.mock import MockLLM  # noqa: E402
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode  # noqa: E402
from llama_index.core.vector_stores.types import (  # noqa: E402
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from tessera.integrations.llama_index import TesseraEmbedding, TesseraVectorStore  # noqa: E402

QUERY = "boundary layer flow"
HEAD = 60


@pytest.fixture(scope="module")
def head_nodes(data_dir: Path) -> list[TextNode]:
    """The first 60 Cranfield documents as nodes of source documents 'src-1'..'src-12' (five a
    source), with their author and bib and a tag list."""
    nodes = []
    for number, doc in enumerate(islice(iter(open_corpus("cranfield")), HEAD)):
        node = TextNode(id_=doc.id, text=doc.text, metadata={**doc.metadata, "tags": [f"t{number % 3}"]})
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=f"src-{number // 5 + 1}")
        nodes.append(node)
    return nodes


@pytest.fixture(scope="module")
def embed() -> TesseraEmbedding:
    return TesseraEmbedding("minilm")


def vector_index(nodes: list[TextNode], embed: TesseraEmbedding, path: Path) -> VectorStoreIndex:
    """LlamaIndex's own index over the nodes, stored in a Tessera store at `path`."""
    context = StorageContext.from_defaults(vector_store=TesseraVectorStore(path, encoder="minilm"))
    return VectorStoreIndex(nodes, storage_context=context, embed_model=embed)


@pytest.fixture(scope="module")
def built(
    head_nodes: list[TextNode], embed: TesseraEmbedding, tmp_path_factory: pytest.TempPathFactory
) -> VectorStoreIndex:
    """Read only: the tests that change a store make their own."""
    return vector_index(head_nodes, embed, tmp_path_factory.mktemp("stores") / "nodes")


def test_llama_index_adds_and_retrieves_through_the_store(
    built: VectorStoreIndex, head_nodes: list[TextNode], tmp_path: Path
) -> None:
    corpus = tmp_path / "texts.jsonl"
    corpus.write_text("".join(json.dumps({"_id": n.node_id, "text": n.text}) + "\n" for n in head_nodes))
    expected = Index.load(build_index(corpus, tmp_path / "index", show_progress=False)).search(QUERY, k=5)
    found = built.as_retriever(similarity_top_k=5).retrieve(QUERY)
    assert [n.node.node_id for n in found] == [h.doc_id for h in expected]
    np.testing.assert_allclose([n.score for n in found], [h.score for h in expected], atol=1e-5)
    given = {n.node_id: n for n in head_nodes}
    first = found[0].node
    assert first.text == given[first.node_id].text and first.metadata == given[first.node_id].metadata
    assert first.ref_doc_id == given[first.node_id].ref_doc_id
    store: TesseraVectorStore = built.vector_store
    assert len(store.client) == HEAD
    by_vector = store.query(VectorStoreQuery(query_embedding=built._embed_model.get_query_embedding(QUERY)))
    assert by_vector.ids == [expected[0].doc_id]
    answer = built.as_query_engine(llm=MockLLM(max_tokens=8), similarity_top_k=3).query(QUERY)
    assert [n.node.node_id for n in answer.source_nodes] == [h.doc_id for h in expected[:3]]


def test_filters_translate_and_the_untranslatable_are_refused(built: VectorStoreIndex) -> None:
    store: TesseraVectorStore = built.vector_store
    nodes = {n.node_id: n for n in store.get_nodes()}
    naca = MetadataFilters(
        filters=[
            MetadataFilter(key="bib", value="naca", operator=FilterOperator.GTE),
            MetadataFilter(key="bib", value="nacb", operator=FilterOperator.LT),
        ]
    )
    found = built.as_retriever(similarity_top_k=10, filters=naca).retrieve(QUERY)
    wanted = {i for i, n in nodes.items() if "naca" <= n.metadata.get("bib", "") < "nacb"}
    assert found and {n.node.node_id for n in found} <= wanted
    either = MetadataFilters(
        filters=[
            MetadataFilter(key="tags", value=["t1"], operator=FilterOperator.ANY),
            MetadataFilter(key="tags", value="t2", operator=FilterOperator.CONTAINS),
        ],
        condition=FilterCondition.OR,
    )
    tagged = store.query(VectorStoreQuery(query_str=QUERY, similarity_top_k=HEAD, filters=either))
    assert set(tagged.ids) == {i for i, n in nodes.items() if n.metadata["tags"] != ["t0"]}
    by_source = store.query(VectorStoreQuery(query_str=QUERY, similarity_top_k=10, doc_ids=["src-2"]))
    assert sorted(by_source.ids, key=int) == ["6", "7", "8", "9", "10"]
    chosen = ["3", "17", "40", "59"]
    by_id = store.query(VectorStoreQuery(query_str=QUERY, similarity_top_k=3, node_ids=chosen))
    assert by_id.ids == [h.doc_id for h in store.client.index.search(QUERY, k=3, doc_ids=chosen)]
    both = store.query(VectorStoreQuery(query_str=QUERY, similarity_top_k=9, node_ids=chosen, filters=either))
    assert set(both.ids) == {i for i in chosen if nodes[i].metadata["tags"] != ["t0"]}
    gone = store.query(VectorStoreQuery(query_str=QUERY, node_ids=["3", "no-such-node"]))
    assert gone.ids == ["3"]  # as LlamaIndex's own stores: an id not stored (deleted) is no match
    with pytest.raises(TesseraError) as refused:
        store.query(
            VectorStoreQuery(
                query_str=QUERY,
                filters=MetadataFilters(
                    filters=[MetadataFilter(key="author", value="x", operator=FilterOperator.TEXT_MATCH)]
                ),
            )
        )
    assert refused.value.field == "filters.author"
    with pytest.raises(TesseraError) as mode:
        store.query(VectorStoreQuery(query_str=QUERY, mode=VectorStoreQueryMode.HYBRID))
    assert mode.value.field == "mode"
    plain = store.query(VectorStoreQuery(query_str=QUERY, similarity_top_k=4))
    diverse = store.query(
        VectorStoreQuery(
            query_str=QUERY, similarity_top_k=4, mode=VectorStoreQueryMode.MMR, mmr_threshold=0.3
        )
    )
    assert diverse.ids[0] == plain.ids[0] and len(set(diverse.ids)) == 4 and diverse.ids != plain.ids
    retriever = built.as_retriever(  # the weight as LlamaIndex's retrievers pass it
        similarity_top_k=4, vector_store_query_mode="mmr", vector_store_kwargs={"mmr_threshold": 0.3}
    )
    assert [n.node.node_id for n in retriever.retrieve(QUERY)] == diverse.ids
    with pytest.raises(TesseraError, match="for one, give \\['3'\\]") as one:
        store.query(VectorStoreQuery(query_str=QUERY, node_ids="3"))
    assert one.value.field == "node_ids"


def test_deletes_by_source_id_and_filter_down_to_empty(
    head_nodes: list[TextNode], embed: TesseraEmbedding, tmp_path: Path
) -> None:
    changed = vector_index(head_nodes[:30], embed, tmp_path / "nodes")
    store: TesseraVectorStore = changed.vector_store
    changed.delete_ref_doc("src-1")  # LlamaIndex's own call: the store's delete(ref_doc_id)
    assert {"1", "2", "3", "4", "5"}.isdisjoint(store.client.ids()) and len(store.client) == 25
    store.delete_nodes(["6", "7", "no-such-node"])
    t0 = MetadataFilters(filters=[MetadataFilter(key="tags", value="t0", operator=FilterOperator.CONTAINS)])
    store.delete_nodes(filters=t0)
    left = store.get_nodes()
    assert left and all(n.metadata["tags"] != ["t0"] for n in left)
    assert [n.node_id for n in store.get_nodes(["9", "6", "8"])] == ["9", "8"]
    updated = TextNode(id_="9", text="supersonic flow past a cone", metadata={"tags": ["new"]})
    store.add([updated])  # an id already stored is replaced
    assert store.get_nodes(["9"])[0].text == updated.text and len(store.client) == len(left)
    store.clear()
    assert not store.client.path.exists()
    assert store.query(VectorStoreQuery(query_str=QUERY)).ids == []


def test_an_index_built_by_the_cli_is_a_vector_store(
    serve_indexes: dict[str, Path], loaded: dict[str, Index], embed: TesseraEmbedding
) -> None:
    store = TesseraVectorStore(serve_indexes["head-bm25"])
    index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
    found = index.as_retriever(similarity_top_k=5).retrieve(QUERY)
    expected = loaded["head-bm25"].search(QUERY, k=5, with_text=True)
    assert [n.node.node_id for n in found] == [h.doc_id for h in expected]
    assert found[0].node.text == expected[0].text and found[0].node.metadata["title"] == expected[0].title
    with pytest.raises(TesseraError) as nested:
        TesseraVectorStore(serve_indexes["head-bm25"].parent / "other").add(
            [TextNode(id_="a", text="x", metadata={"pages": {"first": 1}})]
        )
    assert nested.value.field == "nodes[0].metadata.pages"


def test_a_mock_embedding_skips_llama_index_s_own_encoding(
    built: VectorStoreIndex, head_nodes: list[TextNode], tmp_path: Path
) -> None:
    """The store encodes nodes itself, so LlamaIndex's embedding of them before the add is waste;
    `MockEmbedding` makes it free and changes nothing the retriever finds."""
    context = StorageContext.from_defaults(
        vector_store=TesseraVectorStore(tmp_path / "mock", encoder="minilm")
    )
    cheap = VectorStoreIndex(head_nodes, storage_context=context, embed_model=MockEmbedding(embed_dim=1))
    found = cheap.as_retriever(similarity_top_k=5).retrieve(QUERY)
    expected = built.as_retriever(similarity_top_k=5).retrieve(QUERY)
    assert [n.node.node_id for n in found] == [n.node.node_id for n in expected]
    np.testing.assert_allclose([n.score for n in found], [n.score for n in expected], atol=1e-5)
