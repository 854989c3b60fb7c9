"""`tessera serve --rerank`: requests ask for the service's reranker and get what
`retrieval.rerank` gives over the same first stage; without one the request is refused as JSON."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tessera.retrieval.fusion import hybrid_search
from tessera.retrieval.index import Index
from tessera.retrieval.rerank import load_reranker, rerank
from tests.serve.conftest import wait_ready

QUERIES = ["boundary layer transition", "heat transfer to a blunt body"]


@pytest.fixture
def reranking(make_app):
    with TestClient(make_app(rerank="minilm")) as c:
        wait_ready(c.get)
        yield c


def pairs(hits) -> list[tuple[str, float]]:
    return [(h["doc_id"], pytest.approx(h["score"], abs=1e-5)) for h in hits]


def expected(queries, rows, depth, k):
    return [
        [(h.doc_id, h.score) for h in row[:k]]
        for row in rerank(load_reranker("minilm"), queries, rows, depth)
    ]


def test_search_reranked_equals_rerank_of_the_first_stage(
    reranking: TestClient, loaded: dict[str, Index]
) -> None:
    body = {"queries": QUERIES, "k": 5, "index": "head-bm25", "rerank": True, "rerank_depth": 20}
    got = reranking.post("/v1/search", json=body).json()
    first = loaded["head-bm25"].batch_search(QUERIES, k=20, with_text=True)
    assert [pairs(r["hits"]) for r in got["results"]] == expected(QUERIES, first, 20, 5)
    assert got["reranked_by"] == "minilm" and got["results"][0]["hits"][0]["title"]
    plain = reranking.post("/v1/search", json={**body, "text": False}).json()
    assert [pairs(r["hits"]) for r in plain["results"]] == expected(QUERIES, first, 20, 5)
    assert "title" not in plain["results"][0]["hits"][0]
    assert reranking.get("/health").json()["reranker"] == "minilm"


def test_fused_search_reranked(reranking: TestClient, loaded: dict[str, Index]) -> None:
    body = {
        "queries": QUERIES[:1],
        "k": 4,
        "indexes": ["head-bm25", "head-minilm"],
        "rerank": True,
        "rerank_depth": 15,
    }
    got = reranking.post("/v1/search", json=body).json()
    both = [loaded["head-bm25"], loaded["head-minilm"]]
    first = hybrid_search(both, QUERIES[:1], k=15, depth=100, with_text=True)
    assert [pairs(r["hits"]) for r in got["results"]] == expected(QUERIES[:1], first, 15, 4)


def test_rag_reranked_sources(reranking: TestClient, loaded: dict[str, Index]) -> None:
    body = {"query": QUERIES[1], "k": 3, "index": "head-bm25", "rerank": True, "rerank_depth": 25}
    got = reranking.post("/v1/rag", json=body).json()
    first = loaded["head-bm25"].batch_search(QUERIES[1:], k=25, with_text=True)
    assert [s["doc_id"] for s in got["sources"]] == [d for d, _ in expected(QUERIES[1:], first, 25, 3)[0]]


def test_rerank_without_a_reranker_is_a_json_400(client: TestClient) -> None:
    for url, body in (("/v1/search", {"queries": QUERIES}), ("/v1/rag", {"query": QUERIES[0]})):
        got = client.post(url, json={**body, "rerank": True})
        assert got.status_code == 400 and "no reranker" in got.json()["error"]
    got = client.post("/v1/search", json={"queries": QUERIES, "rerank": True, "rerank_depth": 0})
    assert got.status_code in (400, 422) and "rerank_depth" in got.text


def test_a_reranker_that_cannot_load_keeps_the_service_unready(make_app) -> None:
    with TestClient(make_app(rerank="bm25")) as c:
        for _ in range(500):
            got = c.get("/health")
            if "failed" in got.json().get("error", ""):
                break
        assert got.status_code == 503 and "reranker 'bm25' failed" in got.json()["error"]
        assert "bm25 cannot rerank" in got.json()["error"]
