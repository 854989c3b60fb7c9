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


def test_the_rerank_api_scores_a_clients_texts(reranking: TestClient) -> None:
    """`POST /v1/rerank` in Cohere's and Jina's shape: the reranker's own scores, best first, ties
    by position; `top_n` cuts; documents as strings or `{"text"}` objects; texts on request."""
    texts = [
        "heat transfer to blunt bodies in hypersonic flow",
        "the lift of a wing in a propeller slipstream",
        {"text": "boundary layer transition on a flat plate", "id": "x"},
        "heat transfer to blunt bodies in hypersonic flow",  # a duplicate: the later one ranks after
    ]
    plain = [t if isinstance(t, str) else t["text"] for t in texts]
    scores = load_reranker("minilm").score(QUERIES[1], plain)
    got = reranking.post("/v1/rerank", json={"query": QUERIES[1], "documents": texts, "model": "any"})
    assert got.status_code == 200
    body = got.json()
    assert body["model"] == "minilm" and [r["index"] for r in body["results"]] == [0, 3, 2, 1]
    assert [r["relevance_score"] for r in body["results"]] == pytest.approx(
        [scores[i] for i in (0, 3, 2, 1)], abs=1e-5
    )
    assert "document" not in body["results"][0]
    top = reranking.post(
        "/v1/rerank", json={"query": QUERIES[0], "documents": plain, "top_n": 1, "return_documents": True}
    ).json()["results"]
    assert len(top) == 1 and top[0]["index"] == 2 and top[0]["document"] == {"text": plain[2]}
    # a whole number as Python's json.dumps writes a float (it was a 400)
    written = reranking.post("/v1/rerank", json={"query": QUERIES[0], "documents": plain, "top_n": 2.0})
    assert [r["index"] for r in written.json()["results"]] == [2, 0]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"query": "wing", "documents": []}, 400, "no document to rerank"),
        ({"query": " ", "documents": ["a"]}, 400, "query 1 of 1 is empty"),
        ({"query": "wing", "documents": ["a"], "top_n": 0}, 400, "top_n"),
        ({"query": "wing", "documents": [{"title": "no text"}]}, 400, "documents[0]"),
        ({"query": "wing", "documents": ["a"] * 6}, 413, "at most 5 per request"),
        # JSON types as given: true was 1 result, "2" two, "yes" returned the documents
        ({"query": "wing", "documents": ["a", "b"], "top_n": True}, 400, "field 'top_n'"),
        ({"query": "wing", "documents": ["a", "b"], "top_n": "2"}, 400, "field 'top_n'"),
        ({"query": "wing", "documents": ["a", "b"], "top_n": 1.5}, 400, "field 'top_n'"),
        ({"query": "wing", "documents": ["a"], "return_documents": "yes"}, 400, "field 'return_documents'"),
        ({"query": "wing", "documents": ["a"], "return_documents": 1}, 400, "field 'return_documents'"),
    ],
)
def test_what_cannot_be_reranked_is_refused(make_app, body: dict, status: int, message: str) -> None:
    with TestClient(make_app(rerank="minilm", max_k=5)) as client:
        wait_ready(client.get)
        got = client.post("/v1/rerank", json=body)
        assert got.status_code == status and message in got.json()["error"], got.text


def test_the_rerank_api_without_a_reranker_is_a_400(client: TestClient) -> None:
    got = client.post("/v1/rerank", json={"query": "wing", "documents": ["a"]})
    assert got.status_code == 400 and "--rerank SPEC" in got.json()["error"]


def test_a_small_max_k_caps_the_default_depths_and_refuses_deeper_given_ones(make_app) -> None:
    """The default depth and rerank_depth (100) are cut to --max-k (every fused search under
    `--max-k 50` was a 400); a depth a request gives over it is refused."""
    with TestClient(make_app(max_k=5)) as client:
        wait_ready(client.get)
        plain = client.post("/v1/search", json={"queries": ["wing"], "index": "head-bm25"})  # k 10 cut to 5
        assert plain.status_code == 200 and len(plain.json()["results"][0]["hits"]) == 5
        got = client.get("/v1/search", params={"q": "wing", "index": "head-bm25"})
        assert got.status_code == 200 and got.json()["k"] == 5
        assert client.get("/v1/search", params={"q": "wing", "k": 6}).status_code == 400
        fused = {"queries": ["wing"], "k": 5, "indexes": ["head-bm25", "head-minilm"]}
        got = client.post("/v1/search", json=fused)
        assert got.status_code == 200, got.text
        shallow = client.post("/v1/search", json={**fused, "depth": 5})
        assert got.json()["results"] == shallow.json()["results"]
        deeper = client.post("/v1/search", json={**fused, "depth": 6})
        assert deeper.status_code == 400 and "field 'depth': at most 5, got 6" in deeper.json()["error"]
        reranked = {"queries": ["wing"], "k": 5, "index": "head-bm25", "rerank": True, "rerank_depth": 6}
        assert "field 'rerank_depth'" in client.post("/v1/search", json=reranked).json()["error"]


def test_null_is_an_absent_optional_field(reranking: TestClient) -> None:
    body = {"query": "wing", "documents": ["a", "b"]}
    nulls = {"top_n": None, "return_documents": None, "model": None}
    given = reranking.post("/v1/rerank", json={**body, **nulls})
    assert given.status_code == 200
    assert given.json()["results"] == reranking.post("/v1/rerank", json=body).json()["results"]
