"""LangChain over Tessera, with the real langchain-core: the retriever returns what `search_one`
returns (one index, fused, filtered), as Runnables do (invoke, batch, a chain's step, async);
the embeddings are the encoder's own vectors; wrong options fail when the retriever is made."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from tessera.errors import TesseraError
from tessera.indexing.builder import build_index
from tessera.retrieval.fusion import hybrid_search
from tessera.retrieval.index import Index
from tessera.retrieval.rerank import load_reranker

langchain_core = pytest.importorskip("langchain_core")
from langchain_core.runnables import RunnableLambda  # noqa: E402

from tessera.integrations.langchain import (  # noqa: E402
    TesseraCompressor,
    TesseraEmbeddings,
    TesseraReranker,
    TesseraRetriever,
)

QUERY = "boundary layer flow"


def test_the_retriever_returns_the_index_hits_as_documents(loaded: dict[str, Index]) -> None:
    index = loaded["head-minilm"]
    retriever = TesseraRetriever(indexes=[index], k=5)
    docs = retriever.invoke(QUERY)
    expected = index.search(QUERY, k=5, with_text=True)
    assert [d.id for d in docs] == [h.doc_id for h in expected]
    assert [d.metadata["doc_id"] for d in docs] == [h.doc_id for h in expected]
    assert [d.metadata["rank"] for d in docs] == [1, 2, 3, 4, 5]
    np.testing.assert_allclose([d.metadata["score"] for d in docs], [h.score for h in expected], atol=1e-6)
    assert docs[0].page_content == expected[0].text and docs[0].metadata["title"] == expected[0].title
    batched = retriever.batch([QUERY, "heat transfer"])  # the Runnable interface
    assert [d.id for d in batched[0]] == [d.id for d in docs] and len(batched[1]) == 5
    chain = retriever | RunnableLambda(lambda found: "\n\n".join(d.page_content for d in found))
    assert chain.invoke(QUERY).startswith(expected[0].text)
    assert [d.id for d in asyncio.run(retriever.ainvoke(QUERY))] == [d.id for d in docs]


def test_fused_retriever_from_paths(serve_indexes: dict[str, Path], loaded: dict[str, Index]) -> None:
    retriever = TesseraRetriever.from_paths(serve_indexes["head-minilm"], serve_indexes["head-bm25"], k=10)
    fused = hybrid_search([loaded["head-minilm"], loaded["head-bm25"]], [QUERY], 10, 100)[0]
    assert [d.id for d in retriever.invoke(QUERY)] == [h.doc_id for h in fused]


def test_options_reach_the_search(cranfield_bm25: Path) -> None:
    where = {"bib": {"$gte": "naca", "$lt": "nacb"}}
    retriever = TesseraRetriever.from_paths(cranfield_bm25, k=10, options={"filter": where})
    docs = retriever.invoke("propeller slipstream lift")
    expected = Index.load(cranfield_bm25).search("propeller slipstream lift", k=10, filter=where)
    assert [d.id for d in docs] == [h.doc_id for h in expected]
    assert all(d.metadata["bib"].startswith("naca") for d in docs)  # the document's own metadata


def test_wrong_options_fail_when_made(loaded: dict[str, Index]) -> None:
    index = loaded["head-minilm"]
    with pytest.raises(TesseraError, match="unknown search option 'filters'"):
        TesseraRetriever(indexes=[index], options={"filters": {}})
    with pytest.raises(TesseraError, match="k must be at least 1"):
        TesseraRetriever(indexes=[index], k=0)
    with pytest.raises(TesseraError, match="no index"):
        TesseraRetriever(indexes=[])
    fused = [index, loaded["head-bm25"]]
    for indexes, options, said in [  # each was made, and failed at the first question
        ([index], {"filter": {"bib": {"$foo": 1}}}, "unknown operator"),
        ([index], {"mmr": 5}, "mmr"),
        ([index], {"rerank_depth": -1}, "rerank_depth"),
        ([index], {"reranker": "bm25"}, "bm25 cannot rerank"),
        (fused, {"fusion": "nope"}, "unknown fusion 'nope'"),
        (fused, {"weights": [1.0]}, "takes no weights"),
        (fused, {"depth": 0}, "must be a whole number >= 1"),
    ]:
        with pytest.raises(TesseraError, match=said):
            TesseraRetriever(indexes=indexes, options=options)
    for budget in (0, -5):  # the compressors left no context (or two letters) without a word
        with pytest.raises(TesseraError, match=f"budget must be at least 1 token, got {budget}"):
            TesseraCompressor(compress="truncation", budget=budget)
    with pytest.raises(TesseraError, match="field 'options': option 'clusters' must be at least 1"):
        TesseraCompressor(compress="crag", options={"clusters": 0})


def test_embeddings_are_the_encoder_vectors(loaded: dict[str, Index]) -> None:
    encoder = loaded["head-minilm"].encoder
    embeddings = TesseraEmbeddings("minilm")
    texts = ["boundary layer transition", "heat transfer to a blunt body"]
    np.testing.assert_allclose(embeddings.embed_documents(texts), encoder.encode_docs(texts), atol=1e-6)
    query = encoder.encode_queries(texts[:1])[0]
    np.testing.assert_allclose(embeddings.embed_query(texts[0]), query, atol=1e-6)
    assert embeddings.embed_documents([]) == []
    with pytest.raises(TesseraError, match="lexical"):
        TesseraEmbeddings("bm25")


def test_the_reranker_compresses_as_tessera_reranks(loaded: dict[str, Index]) -> None:
    """BM25's top 10 reranked by MiniLM: the top 3 and scores of `retrieval.rerank`."""
    index = loaded["head-bm25"]
    docs = TesseraRetriever(indexes=[index], k=10).invoke(QUERY)
    hits = index.search(QUERY, k=10, with_text=True)
    # The retriever's page_content is the text alone; rerank the same texts.
    texts = [hit.text for hit in hits]
    scores = load_reranker("minilm").score(QUERY, texts)
    best = np.argsort(-scores, kind="stable")[:3]
    reranker = TesseraReranker(spec="minilm")
    kept = reranker.compress_documents(docs, QUERY)
    assert [d.id for d in kept] == [hits[i].doc_id for i in best]
    np.testing.assert_allclose([d.metadata["relevance_score"] for d in kept], scores[best], atol=1e-5)
    assert "relevance_score" not in docs[0].metadata  # the retrieved documents are not changed
    chain = retriever_then(reranker, TesseraRetriever(indexes=[index], k=10))
    assert [d.id for d in chain.invoke(QUERY)] == [d.id for d in kept]
    assert [d.id for d in TesseraReranker(spec="minilm", top_n=None).compress_documents(docs, QUERY)][:3] == [
        d.id for d in kept
    ]
    with pytest.raises(TesseraError, match="top_n"):
        TesseraReranker(top_n=0)
    with pytest.raises(TesseraError, match="query 1 of 1 is empty"):  # as search and RAG refuse it
        reranker.compress_documents(docs, " ")


def retriever_then(reranker: TesseraReranker, retriever: TesseraRetriever):
    """A retriever and a reranker as one Runnable chain, as ContextualCompressionRetriever is."""
    return RunnableLambda(lambda q: {"docs": retriever.invoke(q), "query": q}) | RunnableLambda(
        lambda x: reranker.compress_documents(x["docs"], x["query"])
    )


def test_crag_compresses_the_retrieved_documents(loaded: dict[str, Index]) -> None:
    from tessera.rag.pipeline import compression_tools

    docs = TesseraRetriever(indexes=[loaded["head-minilm"]], k=10).invoke(QUERY)
    blocks = TesseraCompressor(compress="crag").compress_documents(docs, QUERY)
    tokens = compression_tools(None, None).tokens.count
    before, after = sum(tokens(d.page_content) for d in docs), sum(tokens(b.page_content) for b in blocks)
    assert after < 0.6 * before  # CRAG's default keeps about half the tokens
    sources = [source for block in blocks for source in block.metadata["sources"]]
    assert sorted(sources) == sorted(d.id for d in docs)  # every document in exactly one cluster
    semantic = TesseraCompressor(compress="tcra-semantic", budget=int(before * 0.8))
    kept = semantic.compress_documents(docs[:3], QUERY)
    assert [b.metadata["sources"] for b in kept] == [[d.id] for d in docs[:3]]
    assert kept[0].metadata["title"] == docs[0].metadata["title"]  # one source: its metadata kept
    with pytest.raises(TesseraError) as wrong:
        TesseraCompressor(compress="crag", options={"clusterz": 2})
    assert wrong.value.field == "options"


def test_a_documents_own_fields_named_like_the_hits_are_kept_aside(tmp_path: Path) -> None:
    """A document's own `score`, `title`, `doc_id` or `rank` was overwritten without a word."""
    corpus = tmp_path / "own.jsonl"
    own = {"score": 99, "doc_id": "zz", "title": "meta-title", "rank": 7, "year": 1960, "own_score": 1}
    record = {"_id": "t5", "title": "Flutter", "text": "wing flutter", "metadata": own}
    corpus.write_text(json.dumps(record) + "\n")
    build_index(corpus, tmp_path / "own", "bm25", show_progress=False)
    metadata = TesseraRetriever.from_paths(tmp_path / "own", k=1).invoke("wing flutter")[0].metadata
    assert metadata["doc_id"] == "t5" and metadata["rank"] == 1 and metadata["title"] == "Flutter"
    assert {key: metadata[f"own_{key}"] for key in ("doc_id", "title", "rank")} == {
        key: own[key] for key in ("doc_id", "title", "rank")
    }
    assert metadata["year"] == 1960 and metadata["own_score"] == 1 and metadata["own_own_score"] == 99
