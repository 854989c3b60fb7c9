"""Adding and deleting documents over HTTP (`tessera serve --writable`): the served index then
answers as the Python API's updated index does; bad requests are JSON errors that change nothing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tessera.indexing.manifest import Manifest
from tessera.models.registry import load_encoder
from tessera.retrieval.index import Index
from tessera.serve import ServeSettings, create_app
from tests.serve.conftest import wait_ready


@pytest.fixture
def writable(serve_indexes: dict[str, Path], tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, Path]]]:
    """A writable service over copies of the shared MiniLM and BM25 indexes."""
    copies = {name: Path(shutil.copytree(path, tmp_path / name)) for name, path in serve_indexes.items()}
    specs = [f"{name}={path}" for name, path in copies.items()]
    with TestClient(create_app(ServeSettings.from_specs(specs, writable=True, reload_seconds=0))) as client:
        wait_ready(client.get)
        yield client, copies


def later_documents(cranfield_docs: dict[str, dict], count: int = 2) -> list[dict]:
    """Cranfield documents past the served first 150, as the API takes them."""
    chosen = list(cranfield_docs.values())[200 : 200 + count]
    return [
        {"id": d["_id"], "title": " ".join(d["title"].split()), "text": d["text"], "metadata": {"via": "api"}}
        for d in chosen
    ]


def ranked(client: TestClient, index: str, query: str, **extra) -> list[tuple[str, float]]:
    body = {"queries": [query], "k": 10, "index": index, **extra}
    return [
        (h["doc_id"], h["score"]) for h in client.post("/v1/search", json=body).json()["results"][0]["hits"]
    ]


@pytest.mark.parametrize("name", ["head-minilm", "head-bm25"])
def test_added_and_deleted_documents_are_searched_at_once(
    writable, cranfield_docs, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tessera.serve import documents as module

    client, copies = writable
    loads = []
    monkeypatch.setattr(module, "load_encoder", lambda spec: loads.append(spec) or load_encoder(spec))
    documents = later_documents(cranfield_docs, 3)
    added = client.post(f"/v1/indexes/{name}/documents", json={"documents": documents[:2]})
    assert added.status_code == 200, added.text
    assert (added.json()["added"], added.json()["documents"]) == (2, 152)
    assert (
        client.post(f"/v1/indexes/{name}/documents", json={"documents": documents[2:]}).json()["added"] == 1
    )
    assert loads == ([] if name == "head-bm25" else ["minilm"])  # the document encoder, loaded once
    query = documents[0]["title"]
    hits = ranked(client, name, query)
    assert hits[0][0] == documents[0]["id"]
    on_disk = Index.load(copies[name])  # the published version, as the Python API reads it
    assert hits == [(h.doc_id, pytest.approx(h.score, abs=1e-5)) for h in on_disk.search(query, k=10)]
    filtered = ranked(client, name, query, filter={"via": "api"})
    assert sorted(doc_id for doc_id, _ in filtered) == sorted(d["id"] for d in documents)

    gone = client.post(f"/v1/indexes/{name}/delete", json={"ids": [documents[0]["id"]]})
    assert gone.status_code == 200 and (gone.json()["deleted"], gone.json()["documents"]) == (1, 152)
    assert documents[0]["id"] not in {doc_id for doc_id, _ in ranked(client, name, query)}
    assert Manifest.read(copies[name]).doc_count == 152  # checksums verified
    assert not list(copies[name].parent.glob(f".{name}.add-*"))  # the request's file is gone


def test_bad_writes_are_json_errors_that_change_nothing(writable, cranfield_docs, client: TestClient) -> None:
    service, copies = writable
    before = (copies["head-minilm"] / "manifest.json").read_bytes()
    documents = later_documents(cranfield_docs)
    url = "/v1/indexes/head-minilm"
    cases = [
        (f"{url}/documents", {"documents": [documents[0], documents[0]]}, 400, "documents[1].id"),
        (f"{url}/documents", {"documents": [{**documents[0], "id": " "}]}, 400, "documents[0].id"),
        # a line break would split the index's docids.txt: refused, not written
        (f"{url}/documents", {"documents": [{**documents[0], "id": "a\nb"}]}, 400, "documents[0].id"),
        (f"{url}/documents", {"documents": [{**documents[0], "id": "a\u2028b"}]}, 400, "U+2028"),
        # nested metadata cannot be filtered on: refused, not dropped
        (f"{url}/documents", {"documents": [{**documents[0], "metadata": {"a": {}}}]}, 400, "].metadata.a"),
        ("/v1/search", {"queries": ["q"], "indexes": ["head-minilm", "head-bm25"], "depth": 0}, 400, "depth"),
        ("/v1/search", {"queries": ["q"], "indexes": ["head-minilm", "head-bm25"], "rrf_k": -1}, 400, "rrf"),
        (f"{url}/documents", {"documents": [{**documents[0], "title": "", "text": " "}]}, 400, "no text"),
        (f"{url}/documents", {"documents": [{**documents[0], "id": "1"}]}, 409, "id '1' is already in index"),
        (f"{url}/documents", {"documents": []}, 400, "documents"),
        (f"{url}/delete", {"ids": ["1", "no-such-doc"]}, 404, "not in index 'head-minilm': no-such-doc"),
        ("/v1/indexes/nowhere/documents", {"documents": documents}, 400, "unknown index 'nowhere'"),
    ]
    for path, body, status, message in cases:
        response = service.post(path, json=body)
        assert response.status_code == status and message in response.json()["error"], (path, response.text)
    # JSON's escape of a lone surrogate decodes to a str no encoder, index or response can take:
    # every route's body is checked whole, so the field is named wherever it hides
    for path, raw, message in [
        ("/v1/search", '{"queries": ["wing \\ud800"]}', "field 'queries[0]' holds U+D800, a lone surrogate"),
        ("/v1/search", '{"queries": ["wing"], "filter": {"year": "\\udfff"}}', "field 'filter.year' holds"),
        (f"{url}/documents", '{"documents": [{"id": "s1", "text": "x \\ud800"}]}', "'documents[0].text'"),
        (
            f"{url}/documents",
            '{"documents": [{"id": "s1", "text": "x", "metadata": {"\\ud800": 1}}]}',
            "a key in 'documents[0].metadata' holds U+D800",
        ),
        (f"{url}/delete", '{"ids": ["\\ud800"]}', "field 'ids[0]'"),
        ("/v1/embeddings", '{"input": ["\\ud800"], "model": "head-minilm"}', "field 'input[0]' holds U+D800"),
        ("/v1/rag", '{"query": "wing \\ud800"}', "field 'query' holds U+D800"),
        ("/v1/rerank", '{"query": "wing", "documents": [{"text": "\\ud800"}]}', "'documents[0].text' holds"),
        (
            "/v1/chat/completions",
            '{"messages": [{"role": "user", "content": [{"type": "text", "text": "\\ud800"}]}]}',
            "field 'messages[0].content[0].text' holds U+D800",
        ),
    ]:
        response = service.post(path, content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 400 and message in response.text, (path, response.text)
    assert (copies["head-minilm"] / "manifest.json").read_bytes() == before
    read_only = client.post(f"{url}/documents", json={"documents": documents})  # the shared service
    assert read_only.status_code == 403 and "--writable" in read_only.json()["error"]
    assert service.get("/health").json()["writable"] and not client.get("/health").json()["writable"]
    from tessera.indexing.updates import delete_documents

    delete_documents(copies["head-minilm"], ["2"])  # another process, before this service reloads
    raced = service.post(f"{url}/delete", json={"ids": ["2"]})
    assert (
        raced.status_code == 404 and raced.json()["error"] == "unknown document id '2' in index 'head-minilm'"
    )


def test_deleting_every_document_is_a_conflict_not_a_missing_id(writable) -> None:
    """It was a 404, the status of an id not in the index."""
    client, copies = writable
    ids = list(Index.load(copies["head-bm25"]).docstore.ids())
    got = client.post("/v1/indexes/head-bm25/delete", json={"ids": ids})
    assert got.status_code == 409 and "would leave the index empty" in got.json()["error"]
    titled = {"id": "t-null", "text": "a note on wing flutter", "title": None, "metadata": None}
    added = client.post("/v1/indexes/head-bm25/documents", json={"documents": [titled]})
    assert added.status_code == 200 and added.json()["added"] == 1
