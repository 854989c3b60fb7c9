"""MMR over HTTP: `"mmr"` on POST/GET /v1/search and /v1/rag picks what `search_one(mmr=...)`
picks, after the reranker when both are asked, and a weight out of [0, 1] is a JSON 400."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tessera.retrieval.diversify import Mmr
from tessera.retrieval.index import Index
from tessera.retrieval.query_set import search_one
from tests.serve.conftest import wait_ready

QUERIES = ["boundary layer transition", "propeller slipstream lift"]


@pytest.fixture
def reranking(make_app) -> Iterator[TestClient]:
    with TestClient(make_app(rerank="minilm")) as c:
        wait_ready(c.get)
        yield c


def ids(hits) -> list[str]:
    return [h["doc_id"] if isinstance(h, dict) else h.doc_id for h in hits]


def test_search_picks_what_search_one_picks(reranking: TestClient, loaded: dict[str, Index]) -> None:
    body = {"queries": QUERIES, "k": 5, "index": "head-bm25", "mmr": 0.5, "mmr_depth": 20}
    got = reranking.post("/v1/search", json=body).json()
    assert got["mmr"] == {"weight": 0.5, "depth": 20, "encoder": "minilm"}
    for query, result in zip(QUERIES, got["results"], strict=True):
        want = search_one([loaded["head-bm25"]], query, 5, mmr=Mmr(0.5, 20))
        assert ids(result["hits"]) == ids(want)
        assert [h["score"] for h in result["hits"]] == pytest.approx([h.score for h in want], abs=1e-6)
    bare = reranking.post("/v1/search", json={**body, "text": False}).json()
    assert ids(bare["results"][0]["hits"]) == ids(got["results"][0]["hits"])
    assert "title" not in bare["results"][0]["hits"][0]
    one = reranking.get(
        "/v1/search", params={"q": QUERIES[1], "k": 5, "index": "head-bm25", "mmr": 0.5}
    ).json()
    assert ids(one["results"][0]["hits"]) == ids(search_one([loaded["head-bm25"]], QUERIES[1], 5, mmr=0.5))


def test_reranked_then_diversified_and_fused(reranking: TestClient, loaded: dict[str, Index]) -> None:
    body = {
        "queries": QUERIES[:1],
        "k": 4,
        "index": "head-bm25",
        "rerank": True,
        "rerank_depth": 20,
        "mmr": 0.6,
    }
    got = reranking.post("/v1/search", json=body).json()
    want = search_one([loaded["head-bm25"]], QUERIES[0], 4, reranker="minilm", rerank_depth=20, mmr=0.6)
    assert got["reranked_by"] == "minilm" and ids(got["results"][0]["hits"]) == ids(want)
    fused = {"queries": QUERIES[:1], "k": 4, "indexes": ["head-bm25", "head-minilm"], "mmr": 0.6}
    got = reranking.post("/v1/search", json=fused).json()
    pair = [loaded["head-bm25"], loaded["head-minilm"]]
    assert ids(got["results"][0]["hits"]) == ids(search_one(pair, QUERIES[0], 4, depth=100, mmr=0.6))


def test_rag_sources(reranking: TestClient, loaded: dict[str, Index]) -> None:
    body = {"query": QUERIES[1], "k": 3, "index": "head-bm25", "mmr": 0.5}
    got = reranking.post("/v1/rag", json=body).json()
    assert ids(got["sources"]) == ids(search_one([loaded["head-bm25"]], QUERIES[1], 3, mmr=0.5))


def test_bad_weight_is_json(reranking: TestClient) -> None:
    got = reranking.post("/v1/search", json={"queries": QUERIES, "index": "head-bm25", "mmr": 1.5})
    assert got.status_code == 400 and "mmr" in got.json()["error"]
    got = reranking.post("/v1/search", json={"queries": QUERIES, "index": "head-bm25", "mmr_depth": 5})
    assert got.status_code == 400 and got.json()["error"].startswith("field 'mmr_depth'")
    got = reranking.post(
        "/v1/search", json={"queries": QUERIES, "index": "head-bm25", "mmr": 0.5, "mmr_depth": 10**6}
    )
    assert got.status_code == 400 and got.json()["error"].startswith("field 'mmr_depth': at most")
