"""LlamaIndex over Tessera, with the real llama-index-core: the retriever returns what
`search_one` returns, as nodes a query engine answers from; the embedding model is the encoder's
own vectors and serves LlamaIndex's own vector index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tessera.errors import TesseraError
from tessera.retrieval.fusion import hybrid_search
from tessera.retrieval.index import Index
from tessera.retrieval.rerank import load_reranker

pytest.importorskip("llama_index.core")
from llama_index.core import Document, VectorStoreIndex  # noqa: E402
from llama_index.core.llms.mock import MockLLM  # noqa: E402
from llama_index.core.query_engine import RetrieverQueryEngine  # noqa: E402
from llama_index.core.schema import MetadataMode  # noqa: E402

from tessera.integrations.llama_index import (  # noqa: E402
    TesseraCompress,
    TesseraEmbedding,
    TesseraRerank,
    TesseraRetriever,
)

QUERY = "boundary layer flow"


def test_the_retriever_returns_the_index_hits_as_nodes(loaded: dict[str, Index]) -> None:
    index = loaded["head-minilm"]
    nodes = TesseraRetriever([index], k=5).retrieve(QUERY)
    expected = index.search(QUERY, k=5, with_text=True)
    assert [n.node.node_id for n in nodes] == [h.doc_id for h in expected]
    np.testing.assert_allclose([n.score for n in nodes], [h.score for h in expected], atol=1e-6)
    assert nodes[0].node.get_content() == expected[0].text
    assert nodes[0].node.metadata["title"] == expected[0].title and nodes[0].node.metadata["rank"] == 1


def test_a_query_engine_answers_from_fused_hits(
    serve_indexes: dict[str, Path], loaded: dict[str, Index]
) -> None:
    retriever = TesseraRetriever.from_paths(serve_indexes["head-minilm"], serve_indexes["head-bm25"], k=4)
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM(max_tokens=8))
    response = engine.query(QUERY)
    fused = hybrid_search([loaded["head-minilm"], loaded["head-bm25"]], [QUERY], 4, 100)[0]
    assert [n.node.node_id for n in response.source_nodes] == [h.doc_id for h in fused]
    assert str(response).strip()


def test_wrong_options_fail_when_made(loaded: dict[str, Index]) -> None:
    with pytest.raises(TesseraError, match="unknown search option 'rerank'"):
        TesseraRetriever([loaded["head-minilm"]], options={"rerank": "minilm"})
    with pytest.raises(TesseraError, match="unknown fusion 'nope'"):  # was made, and failed when asked
        TesseraRetriever([loaded["head-minilm"], loaded["head-bm25"]], options={"fusion": "nope"})
    with pytest.raises(TesseraError, match="budget must be at least 1 token, got 0"):
        TesseraCompress(compress="truncation", budget=0)


def test_the_embedding_model_serves_a_llama_index_vector_index(loaded: dict[str, Index]) -> None:
    encoder = loaded["head-minilm"].encoder
    model = TesseraEmbedding("minilm")
    texts = ["boundary layer transition", "heat transfer to a blunt body", "propeller slipstream"]
    np.testing.assert_allclose(model.get_text_embedding_batch(texts), encoder.encode_docs(texts), atol=1e-6)
    query = encoder.encode_queries(["blunt body heating"])[0]
    np.testing.assert_allclose(model.get_query_embedding("blunt body heating"), query, atol=1e-6)
    vectors = VectorStoreIndex.from_documents(
        [Document(text=t, id_=str(i)) for i, t in enumerate(texts)], embed_model=model
    )
    top = vectors.as_retriever(similarity_top_k=1).retrieve("blunt body heating")
    assert top[0].node.get_content() == texts[1]
    with pytest.raises(TesseraError, match="lexical"):
        TesseraEmbedding("bm25")


def test_the_postprocessor_reranks_a_query_engines_nodes(loaded: dict[str, Index]) -> None:
    index = loaded["head-bm25"]
    hits = index.search(QUERY, k=10, with_text=True)
    engine = RetrieverQueryEngine.from_args(
        TesseraRetriever([index], k=10),
        llm=MockLLM(max_tokens=8),
        node_postprocessors=[TesseraRerank("minilm", top_n=3)],
    )
    nodes = engine.query(QUERY).source_nodes
    # LlamaIndex reads a node with its metadata (title, ...) as the reranker's text; the order
    # of MiniLM over those texts:
    texts = [
        n.node.get_content(metadata_mode=MetadataMode.EMBED)
        for n in TesseraRetriever([index], k=10).retrieve(QUERY)
    ]
    assert texts[0].startswith("title: ") and "score: " not in texts[0]  # search metadata left out
    scores = load_reranker("minilm").score(QUERY, texts)
    assert [n.node.node_id for n in nodes] == [hits[i].doc_id for i in np.argsort(-scores, kind="stable")[:3]]
    np.testing.assert_allclose([n.score for n in nodes], np.sort(scores)[::-1][:3], atol=1e-5)
    with pytest.raises(TesseraError, match="top_n"):
        TesseraRerank("minilm", top_n=-1)


def test_a_query_engine_reranks_then_compresses(loaded: dict[str, Index]) -> None:
    from tessera.rag.pipeline import compression_tools

    retriever = TesseraRetriever([loaded["head-bm25"]], k=10)
    engine = RetrieverQueryEngine.from_args(
        retriever,
        llm=MockLLM(max_tokens=8),
        node_postprocessors=[TesseraRerank("minilm", top_n=5), TesseraCompress("tcra-summary")],
    )
    nodes = engine.query(QUERY).source_nodes
    top5 = TesseraRerank("minilm", top_n=5).postprocess_nodes(retriever.retrieve(QUERY), query_str=QUERY)
    assert [n.node.metadata["sources"] for n in nodes] == [[n.node.node_id] for n in top5]
    tokens = compression_tools(None, None).tokens.count
    assert sum(tokens(n.node.get_content()) for n in nodes) < 0.7 * sum(
        tokens(n.node.get_content()) for n in top5
    )
    assert [n.score for n in nodes] == [n.score for n in top5]
    read = nodes[0].node.get_content(metadata_mode=MetadataMode.LLM)  # what the LLM is given
    assert read.startswith("title: ") and "score: " not in read and "sources" not in read
