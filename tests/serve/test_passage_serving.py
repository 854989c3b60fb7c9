"""RAG over HTTP from a chunked index: the prompt holds passages (with their offsets), as
`tessera.rag.prepare` builds it; `per_document` as the Python call takes it; fused indexes give
each document's best passage, and asking them for several is a JSON 400."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tessera.indexing.builder import build_index
from tessera.rag import prepare
from tessera.retrieval.index import Index
from tessera.serve import ServeSettings, create_app
from tests.serve.conftest import wait_ready

QUERY = "what similarity laws must be obeyed when constructing aeroelastic models of heated aircraft"


@pytest.fixture(scope="module")
def chunked(cranfield_head: Path, tmp_path_factory: pytest.TempPathFactory) -> Index:
    out = tmp_path_factory.mktemp("served") / "head-chunked"
    return Index.load(build_index(cranfield_head / "corpus.jsonl", out, chunk="48:8", show_progress=False))


@pytest.fixture
def client(chunked: Index, loaded: dict[str, Index]) -> Iterator[TestClient]:
    opened = {"chunked": chunked, "bm25": loaded["head-bm25"]}
    settings = ServeSettings(indexes={name: str(index.root) for name, index in opened.items()})
    app = create_app(settings, load=lambda path: next(i for i in opened.values() if i.root == Path(path)))
    with TestClient(app) as c:
        wait_ready(c.get)
        yield c


def test_rag_from_a_chunked_index_holds_its_best_passages(client: TestClient, chunked: Index) -> None:
    got = client.post("/v1/rag", json={"query": QUERY, "k": 6, "index": "chunked", "per_document": 6}).json()
    passages = chunked.search(QUERY, 6, with_text=True, per_document=6)
    assert [(s["doc_id"], tuple(s["offsets"])) for s in got["sources"]] == [
        (h.doc_id, h.offsets) for h in passages
    ]
    assert [block["text"] for block in got["context"]] == [
        f"{h.title}\n{h.passage}" if h.title and not h.passage.startswith(h.title) else h.passage
        for h in passages
    ]
    default = client.post("/v1/rag", json={"query": QUERY, "k": 6, "index": "chunked"}).json()
    expected = prepare(chunked, QUERY, k=6).sources  # 150 documents: one passage each
    assert [(s["doc_id"], s["offsets"]) for s in default["sources"]] == [
        (s["doc_id"], s["offsets"]) for s in expected
    ]
    assert [s["doc_id"] for s in default["sources"]] == [h.doc_id for h in chunked.search(QUERY, 6)]
    mmr = client.post(
        "/v1/rag", json={"query": QUERY, "k": 4, "index": "chunked", "mmr": 1.0, "per_document": 4}
    )
    first_four = chunked.search(QUERY, 4, per_document=4)  # weight 1 keeps the first stage's order
    assert [(s["doc_id"], tuple(s["offsets"])) for s in mmr.json()["sources"]] == [
        (h.doc_id, h.offsets) for h in first_four
    ]


def test_fused_rag_gives_each_document_its_best_passage(client: TestClient) -> None:
    body = {"query": QUERY, "k": 5, "indexes": ["chunked", "bm25"]}
    got = client.post("/v1/rag", json=body).json()
    assert len({s["doc_id"] for s in got["sources"]}) == 5
    assert any("offsets" in s for s in got["sources"])  # found by the chunked index: its passage
    refused = client.post("/v1/rag", json={**body, "per_document": 2})
    assert refused.status_code == 400 and "fused indexes rank documents" in refused.json()["error"]
    whole = client.post("/v1/rag", json={"query": QUERY, "k": 5, "index": "bm25", "per_document": 2})
    assert whole.status_code == 400 and "holds one entry a document" in whole.json()["error"]
