"""The JSON API against the Python API it wraps: same ids and scores; every error as JSON."""

from __future__ import annotations

import json
import threading

import pytest
from fastapi.testclient import TestClient

from tessera.retrieval.fusion import hybrid_search
from tessera.retrieval.index import Index

QUERIES = ["boundary layer transition", "heat transfer to a blunt body", "supersonic flow over a wing"]


def ids_scores(hits) -> list[tuple[str, float]]:
    return [(h["doc_id"], h["score"]) if isinstance(h, dict) else (h.doc_id, h.score) for h in hits]


def test_get_search_equals_index_search(client: TestClient, loaded: dict[str, Index]) -> None:
    for name, index in loaded.items():
        got = client.get("/v1/search", params={"q": QUERIES[0], "k": 7, "index": name}).json()
        assert ids_scores(got["results"][0]["hits"]) == ids_scores(index.search(QUERIES[0], k=7))
        assert [h["rank"] for h in got["results"][0]["hits"]] == list(range(1, 8))


def test_default_index_is_the_first(client: TestClient, loaded: dict[str, Index]) -> None:
    got = client.get("/v1/search", params={"q": QUERIES[1]}).json()
    assert got["index"] == "head-minilm"
    assert ids_scores(got["results"][0]["hits"]) == ids_scores(loaded["head-minilm"].search(QUERIES[1]))


def test_post_batch_equals_batch_search(client: TestClient, loaded: dict[str, Index]) -> None:
    for name, index in loaded.items():
        got = client.post("/v1/search", json={"queries": QUERIES, "k": 5, "index": name}).json()
        expected = index.batch_search(QUERIES, k=5)
        assert [ids_scores(r["hits"]) for r in got["results"]] == [ids_scores(row) for row in expected]


def test_fused_equals_hybrid_search(client: TestClient, loaded: dict[str, Index]) -> None:
    body = {"queries": QUERIES, "k": 10, "indexes": ["head-minilm", "head-bm25"], "depth": 50}
    got = client.post("/v1/search", json=body).json()
    expected = hybrid_search([loaded["head-minilm"], loaded["head-bm25"]], QUERIES, k=10, depth=50)
    assert [ids_scores(r["hits"]) for r in got["results"]] == [ids_scores(row) for row in expected]
    assert got["results"][0]["hits"][0]["title"]  # fused hits get their text back
    assert got["fused"] == "rrf"


def test_fused_search_parameters_go_to_the_index_of_their_kind(
    client: TestClient, loaded: dict[str, Index], serve_indexes: dict
) -> None:
    body = {"queries": QUERIES, "k": 10, "indexes": ["head-minilm", "head-bm25"], "params": {"prf": "rm3"}}
    got = client.post("/v1/search", json=body).json()
    rm3 = Index.load(serve_indexes["head-bm25"], search_params={"prf": "rm3"})
    expected = hybrid_search([loaded["head-minilm"], rm3], QUERIES, k=10, depth=100)
    assert [ids_scores(r["hits"]) for r in got["results"]] == [ids_scores(row) for row in expected]
    bad = client.post(
        "/v1/search", json={"queries": QUERIES, "index": "head-minilm", "params": {"prf": "rm3"}}
    )
    assert bad.status_code == 400 and "prf" in bad.json()["error"]


def test_fused_by_weighted_scores(client: TestClient, loaded: dict[str, Index]) -> None:
    indexes = ["head-minilm", "head-bm25"]
    body = {"queries": QUERIES, "k": 10, "indexes": indexes, "depth": 50, "fusion": "wsum", "weights": [2, 1]}
    got = client.post("/v1/search", json=body).json()
    expected = hybrid_search(
        [loaded[name] for name in indexes], QUERIES, k=10, depth=50, fusion="wsum", weights=[2, 1]
    )
    assert got["fused"] == "wsum"
    assert [ids_scores(r["hits"]) for r in got["results"]] == [ids_scores(row) for row in expected]
    bad = client.post("/v1/search", json={**body, "weights": [1]})
    assert bad.status_code == 400 and "1 weights for 2 runs" in bad.json()["error"]


def test_doc_ids_restrict_exactly(client: TestClient, loaded: dict[str, Index]) -> None:
    index = loaded["head-minilm"]
    everything = index.search(QUERIES[0], k=len(index))
    allowed = [h.doc_id for h in everything[-40:]]  # the worst-ranked documents: found only by widening
    body = {"queries": [QUERIES[0]], "k": 5, "index": "head-minilm", "doc_ids": allowed}
    got = client.post("/v1/search", json=body).json()["results"][0]["hits"]
    expected = everything[-40:][:5]  # scored one by one from the stored vectors: the same to 1e-6
    assert [h["doc_id"] for h in got] == [h.doc_id for h in expected]
    assert [h["score"] for h in got] == pytest.approx([h.score for h in expected], abs=1e-6)
    assert [h["rank"] for h in got] == [1, 2, 3, 4, 5]


def test_text_off_gives_ids_only(client: TestClient) -> None:
    hit = client.get("/v1/search", params={"q": QUERIES[0], "text": "false"}).json()["results"][0]["hits"][0]
    assert set(hit) == {"doc_id", "score", "rank"}


def test_hits_carry_title_and_highlightable_snippet(client: TestClient) -> None:
    hit = client.get("/v1/search", params={"q": "boundary layer", "k": 1}).json()["results"][0]["hits"][0]
    assert hit["title"] and "boundary" in hit["snippet"].lower()


def test_document(client: TestClient, loaded: dict[str, Index]) -> None:
    doc_id = loaded["head-bm25"].search(QUERIES[0], k=1)[0].doc_id
    got = client.get(f"/v1/doc/{doc_id}", params={"index": "head-bm25"}).json()
    stored = loaded["head-bm25"].document(doc_id)
    assert (got["doc_id"], got["title"], got["text"]) == (doc_id, stored.title, stored.text)


def test_indexes_and_health(client: TestClient) -> None:
    listed = client.get("/v1/indexes").json()["indexes"]
    assert [(i["name"], i["documents"]) for i in listed] == [("head-minilm", 150), ("head-bm25", 150)]
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["indexes"] == listed


@pytest.mark.parametrize(
    ("method", "url", "payload", "status", "says"),
    [
        ("get", "/v1/search", {"q": "flow", "k": 0}, 400, "k must be at least 1"),
        ("get", "/v1/search", {"q": "flow", "k": -3}, 400, "k must be at least 1"),
        ("get", "/v1/search", {"q": "flow", "k": "ten"}, 400, "field 'k'"),
        ("get", "/v1/search", {"q": "flow", "k": 5000}, 400, "at most 1000"),
        ("get", "/v1/search", {"q": "   "}, 400, "empty"),
        ("get", "/v1/search", {}, 400, "field 'q'"),
        ("get", "/v1/search", {"q": "flow", "index": "nope"}, 400, "unknown index 'nope'"),
        ("post", "/v1/search", {"queries": ["flow", ""]}, 400, "query 2 of 2 is empty"),
        ("post", "/v1/search", {"queries": []}, 400, "field 'queries'"),
        ("post", "/v1/search", {"queries": ["flow"], "k": 0}, 400, "k must be at least 1"),
        (
            "post",
            "/v1/search",
            {"queries": ["flow"], "indexes": ["head-minilm", "x"]},
            400,
            "unknown index 'x'",
        ),
        ("post", "/v1/search", {"queries": ["flow"], "index": "x"}, 400, "unknown index 'x'"),
        ("post", "/v1/search", {"queries": ["flow"], "doc_ids": ["no-such-doc"]}, 400, "unknown ids"),
        ("post", "/v1/search", {"queries": ["flow"], "colour": "red"}, 400, "field 'colour'"),
        ("post", "/v1/search", {"queries": ["flow"], "params": {"nprobe": 4}}, 400, "nprobe"),
        ("post", "/v1/search", {"queries": ["flow"] * 300}, 413, "at most 256"),
        ("post", "/v1/rag", {"query": " "}, 400, "empty"),
        ("post", "/v1/rag", {"k": 1}, 400, "field 'query': Field required"),  # a body field named query
        ("post", "/v1/rag", {"query": 5}, 400, "field 'query': Input should be a valid string"),
        ("post", "/v1/rag", {"query": "flow", "search_query": " "}, 400, "search query is empty"),
        ("post", "/v1/rag", {"query": "flow", "k": 0}, 400, "k must be at least 1"),
        ("post", "/v1/rag", {"query": "flow", "compress": "zip"}, 400, "zip"),
        (
            "post",
            "/v1/rag",
            {"query": "flow", "indexes": ["head-minilm", "head-bm25"], "fusion": "wsum", "weights": [1]},
            400,
            "1 weights for 2 runs",
        ),
        ("post", "/v1/rag", {"query": "flow", "weights": [1.0]}, 400, "need indexes to fuse"),
        ("post", "/v1/search", {"queries": ["flow"], "fusion": "wsum"}, 400, "need indexes to fuse"),
        (
            "post",
            "/v1/rag",
            {"query": "flow", "index": "head-bm25", "indexes": ["head-bm25"]},
            400,
            "not both",
        ),
        ("get", "/v1/doc/no-such-doc", {}, 404, "no document 'no-such-doc'"),
        ("get", "/v1/nothing-here", {}, 404, "Not Found"),
    ],
)
def test_errors_are_json(
    client: TestClient, method: str, url: str, payload: dict, status: int, says: str
) -> None:
    response = client.get(url, params=payload) if method == "get" else client.post(url, json=payload)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and says in body["error"]
    assert "Traceback" not in body["error"]


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post("/v1/search", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and set(response.json()) == {"error"}


def test_oversized_body_is_413(make_app) -> None:
    with TestClient(make_app(max_body_bytes=2000)) as c:
        declared = c.post("/v1/search", json={"queries": ["x" * 3000]})
        assert declared.status_code == 413 and "over 2000 bytes" in declared.json()["error"]
        chunks = iter([b'{"queries": ["', b"y" * 3000, b'"]}'])  # no Content-Length: counted as it streams
        streamed = c.post("/v1/search", content=chunks, headers={"content-type": "application/json"})
        assert streamed.status_code == 413 and set(streamed.json()) == {"error"}


def test_health_is_503_until_loaded(make_app, loaded: dict[str, Index]) -> None:
    release = threading.Event()

    def slow_load(path):
        release.wait(30)
        return loaded["head-minilm"]

    from tessera.serve import ServeSettings, create_app

    app = create_app(ServeSettings(indexes={"head-minilm": "unused"}), load=slow_load)
    with TestClient(app) as c:
        before = c.get("/health")
        assert before.status_code == 503 and before.json() == {"error": "indexes are still loading"}
        assert c.get("/v1/search", params={"q": "flow"}).status_code == 503
        release.set()
        from tests.serve.conftest import wait_ready

        wait_ready(c.get)
        assert c.get("/health").json()["indexes"][0]["documents"] == 150


def test_failed_load_says_why(tmp_path) -> None:
    from tessera.serve import ServeSettings, create_app

    with TestClient(create_app(ServeSettings(indexes={"gone": str(tmp_path / "gone")}))) as c:
        for _ in range(200):
            body = c.get("/health").json()
            if "failed" in body["error"]:
                break
            threading.Event().wait(0.02)
        assert c.get("/health").status_code == 503 and "no such index directory" in body["error"]


def test_rag_json_without_generator(client: TestClient, loaded: dict[str, Index]) -> None:
    got = client.post("/v1/rag", json={"query": QUERIES[0], "k": 3, "index": "head-minilm"}).json()
    assert got["answer"] is None and got["generator"] is None
    assert [s["doc_id"] for s in got["sources"]] == [
        h.doc_id for h in loaded["head-minilm"].search(QUERIES[0], 3)
    ]
    assert got["prompt_tokens"] == got["plain_tokens"] > 0 and "search_query" not in got


def test_rag_searches_the_search_query_and_asks_the_query(
    client: TestClient, loaded: dict[str, Index]
) -> None:
    """A follow-up's search (rag/conversation.py) on each retrieval path: plain, diversified, fused."""
    index = loaded["head-minilm"]
    for extra in ({}, {"mmr": 0.9}):
        body = {"query": "and why?", "search_query": QUERIES[0], "k": 3, "index": "head-minilm", **extra}
        response = client.post("/v1/rag", json=body)
        assert response.status_code == 200, response.text
        got = response.json()
        assert got["query"] == "and why?" and got["search_query"] == QUERIES[0]
        if not extra:
            assert [s["doc_id"] for s in got["sources"]] == [h.doc_id for h in index.search(QUERIES[0], 3)]
    both = [index, loaded["head-bm25"]]
    fused = client.post(
        "/v1/rag",
        json={
            "query": "and why?",
            "search_query": QUERIES[1],
            "k": 4,
            "indexes": ["head-minilm", "head-bm25"],
        },
    ).json()
    expected = hybrid_search(both, [QUERIES[1]], k=4, depth=100)[0]
    assert [s["doc_id"] for s in fused["sources"]] == [h.doc_id for h in expected]


def test_rag_from_fused_indexes_equals_hybrid_search(client: TestClient, loaded: dict[str, Index]) -> None:
    both = [loaded["head-minilm"], loaded["head-bm25"]]
    for fusion, weights in [("rrf", None), ("wsum", [0.3, 0.7])]:
        got = client.post(
            "/v1/rag",
            json={
                "query": QUERIES[1],
                "k": 4,
                "indexes": ["head-minilm", "head-bm25"],
                "depth": 30,
                "fusion": fusion,
                "weights": weights,
            },
        ).json()
        expected = hybrid_search(both, [QUERIES[1]], k=4, depth=30, fusion=fusion, weights=weights)[0]
        assert [s["doc_id"] for s in got["sources"]] == [h.doc_id for h in expected]
        assert [s["score"] for s in got["sources"]] == pytest.approx([h.score for h in expected])
        assert all(block["text"].strip() for block in got["context"])  # the fused hits carry their text


def test_rag_search_parameters_as_search_takes_them(
    client: TestClient, loaded: dict[str, Index], serve_indexes: dict
) -> None:
    rocchio = Index.load(serve_indexes["head-bm25"], search_params={"prf": "rocchio"})
    body = {"query": QUERIES[1], "k": 4, "index": "head-bm25", "params": {"prf": "rocchio"}}
    got = client.post("/v1/rag", json=body).json()
    assert [s["doc_id"] for s in got["sources"]] == [h.doc_id for h in rocchio.search(QUERIES[1], 4)]
    fused = client.post(
        "/v1/rag", json={**body, "index": None, "indexes": ["head-minilm", "head-bm25"]}
    ).json()
    expected = hybrid_search([loaded["head-minilm"], rocchio], [QUERIES[1]], k=4, depth=100)[0]
    assert [s["doc_id"] for s in fused["sources"]] == [h.doc_id for h in expected]
    bad = client.post("/v1/rag", json={**body, "index": "head-minilm"})
    assert bad.status_code == 400 and "prf" in bad.json()["error"]


def test_rag_stream_without_generator(client: TestClient) -> None:
    response = client.post("/v1/rag", json={"query": QUERIES[0], "k": 3, "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [block.split("\n") for block in response.text.strip().split("\n\n")]
    names = [lines[0].removeprefix("event: ") for lines in events]
    assert names == ["sources", "done"]
    assert len(json.loads(events[0][1].removeprefix("data: "))["sources"]) == 3


def test_rag_stream_with_a_generator(client: TestClient) -> None:
    """Token events as the generator yields them (a scripted generator: no LLM in the test)."""

    class Scripted:
        name = "scripted"

        def __init__(self, tokens) -> None:
            self.tokens = tokens

        def stream(self, messages, max_new_tokens=256):
            yield from ["A boundary ", "layer."]

        def generate(self, messages, max_new_tokens=256):
            return "A boundary layer."

    from tessera.rag.tokens import token_counter

    client.app.state.rag.generator = Scripted(token_counter())
    streamed = client.post("/v1/rag", json={"query": QUERIES[0], "k": 2, "stream": True}).text
    assert 'event: token\ndata: {"text": "A boundary "}' in streamed
    assert 'event: done\ndata: {"answer": "A boundary layer."}' in streamed
    plain = client.post("/v1/rag", json={"query": QUERIES[0], "k": 2}).json()
    assert plain["answer"] == "A boundary layer." and plain["generator"] == "scripted"


def test_malformed_json_is_located_by_character_not_named_a_field(client: TestClient) -> None:
    json_type = {"content-type": "application/json"}
    got = client.post("/v1/search", content='{"queries":["wing"', headers=json_type)
    assert got.status_code == 400 and got.json()["error"].startswith("malformed JSON at character 18")


def test_models_one_by_one_and_methods_allowed(client: TestClient) -> None:
    """OpenAI's `models.retrieve` reads `GET /v1/models/{name}`; a 405 says what is allowed."""
    listed = client.get("/v1/models").json()["data"]
    assert client.get("/v1/models/head-minilm").json() == listed[0]
    missing = client.get("/v1/models/gpt-4")
    assert missing.status_code == 404 and "model 'gpt-4' does not exist" in missing.json()["error"]["message"]
    wrong = client.get("/v1/rerank")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST" and "error" in wrong.json()
    assert client.put("/v1/search").headers["allow"] == "GET, POST"  # both routes of the path
