"""Metadata filters over HTTP: the service's filtered search equals `Index.search(filter=...)`,
fused and RAG requests honour the filter, hits carry metadata, and a bad filter is a JSON 400."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tessera.retrieval.fusion import hybrid_search
from tessera.retrieval.index import Index
from tessera.serve import ServeSettings, create_app
from tests.serve.conftest import wait_ready

QUERIES = ["boundary layer transition", "propeller slipstream lift"]
NACA = {"bib": {"$gte": "naca", "$lt": "nacb"}}


@pytest.fixture(scope="module")
def opened(cranfield_bm25: Path, cranfield_dense: Path) -> dict[str, Index]:
    return {"bm25": Index.load(cranfield_bm25), "dense": Index.load(cranfield_dense)}


@pytest.fixture
def client(opened: dict[str, Index]) -> Iterator[TestClient]:
    settings = ServeSettings(indexes={name: str(index.root) for name, index in opened.items()})
    with TestClient(create_app(settings, load=lambda path: next(
        i for i in opened.values() if i.root == Path(path)
    ))) as c:  # fmt: skip
        wait_ready(c.get)
        yield c


def ids_scores(hits) -> list[tuple[str, float]]:
    return [(h["doc_id"], round(h["score"], 5)) if isinstance(h, dict) else (h.doc_id, round(h.score, 5))
            for h in hits]  # fmt: skip


def test_filtered_search_equals_the_python_api(client: TestClient, opened: dict[str, Index]) -> None:
    for name, index in opened.items():
        body = {"queries": QUERIES, "k": 8, "index": name, "filter": NACA}
        got = client.post("/v1/search", json=body).json()["results"]
        expected = index.batch_search(QUERIES, k=8, filter=NACA)
        assert [ids_scores(r["hits"]) for r in got] == [ids_scores(row) for row in expected]
        assert all(h["metadata"]["bib"].startswith("naca") for r in got for h in r["hits"])


def test_get_search_takes_the_filter_as_json(client: TestClient, opened: dict[str, Index]) -> None:
    params = {"q": QUERIES[0], "k": 5, "index": "bm25", "filter": json.dumps(NACA)}
    got = client.get("/v1/search", params=params).json()["results"][0]["hits"]
    assert ids_scores(got) == ids_scores(opened["bm25"].search(QUERIES[0], k=5, filter=NACA))
    bad = client.get("/v1/search", params={**params, "filter": '{"bib": '})
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]


def test_filter_with_doc_ids_and_fusion(client: TestClient, opened: dict[str, Index]) -> None:
    bm25, dense = opened["bm25"], opened["dense"]
    body = {"queries": QUERIES, "k": 10, "indexes": ["bm25", "dense"], "depth": 40, "filter": NACA}
    got = client.post("/v1/search", json=body).json()["results"]
    expected = hybrid_search([bm25, dense], QUERIES, k=10, depth=40, filter=NACA)
    assert [ids_scores(r["hits"]) for r in got] == [ids_scores(row) for row in expected]
    ids = [h.doc_id for h in bm25.search(QUERIES[0], k=300)][150:]
    one = {"queries": QUERIES[:1], "k": 5, "index": "bm25", "filter": NACA, "doc_ids": ids}
    hits = client.post("/v1/search", json=one).json()["results"][0]["hits"]
    assert ids_scores(hits) == ids_scores(bm25.search(QUERIES[0], k=5, filter=NACA, doc_ids=ids))


def test_rag_sources_match_the_filter(client: TestClient, opened: dict[str, Index]) -> None:
    body = {"query": QUERIES[1], "k": 4, "index": "bm25", "filter": NACA}
    got = client.post("/v1/rag", json=body).json()
    expected = opened["bm25"].search(QUERIES[1], k=4, filter=NACA)
    assert [s["doc_id"] for s in got["sources"]] == [h.doc_id for h in expected]


def test_documents_show_their_metadata(client: TestClient) -> None:
    got = client.get("/v1/doc/1", params={"index": "bm25"}).json()
    assert got["metadata"] == {"author": "brenckman,m.", "bib": "j. ae. scs. 25, 1958, 324."}


@pytest.mark.parametrize(
    ("url", "body", "says"),
    [
        ("/v1/search", {"queries": ["flow"], "filter": {"bib": {"$like": "n"}}}, "filter.bib.$like"),
        ("/v1/search", {"queries": ["flow"], "filter": {}}, "non-empty JSON object"),
        ("/v1/rag", {"query": "flow", "filter": {"year": {"$gt": True}}}, "filter.year.$gt"),
    ],
)
def test_a_bad_filter_is_a_json_400(client: TestClient, url: str, body: dict, says: str) -> None:
    response = client.post(url, json=body)
    assert response.status_code == 400 and says in response.json()["error"]
