"""`serve --mmap`: the default loader maps the indexes' faiss files, and answers as before."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tessera.retrieval.index import Index
from tessera.serve import ServeSettings, create_app
from tests.conftest import mapped_here, needs_maps
from tests.serve.conftest import wait_ready


@needs_maps
def test_serve_mmap_maps_and_answers(serve_indexes: dict[str, Path], loaded: dict[str, Index]) -> None:
    path = serve_indexes["head-minilm"]
    settings = ServeSettings.from_specs([f"head-minilm={path}"], mmap=True)
    with TestClient(create_app(settings)) as client:
        wait_ready(client.get)
        assert mapped_here(path / "vectors.faiss")
        got = client.get("/v1/search", params={"q": "boundary layer", "k": 5, "text": "false"}).json()
        hits = got["results"][0]["hits"]
    want = loaded["head-minilm"].search("boundary layer", 5)
    assert [h["doc_id"] for h in hits] == [h.doc_id for h in want]
    assert [h["score"] for h in hits] == pytest.approx([h.score for h in want], abs=1e-6)
