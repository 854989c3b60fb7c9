"""More like this on Cranfield: a MiniLM index's neighbours of a document are its stored vector's
exact nearest (itself left out), BM25's those of the document's words as a query; the CLI, the
service and the search page show the same; an unknown id is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tessera.errors import TesseraError, TesseraWarning
from tessera.retrieval.index import Index
from tessera.retrieval.similar import SIMILAR_WORDS, similar
from tests.conftest import run_cli


@pytest.mark.parametrize("doc_id", ["1", "484", "1400"])
def test_dense_neighbours_are_the_exact_nearest(dense: Index, doc_id: str) -> None:
    ids = (dense.root / "docids.txt").read_text().splitlines()
    everything = dense.stored_vectors(ids)
    scores = everything @ dense.stored_vectors([doc_id])[0]
    order = [i for i in np.argsort(-scores, kind="stable") if ids[i] != doc_id][:10]
    got = similar(dense, doc_id, 10)
    assert [h.doc_id for h in got] == [ids[i] for i in order]
    assert [h.score for h in got] == pytest.approx([float(scores[i]) for i in order], abs=1e-5)
    assert [h.rank for h in got] == list(range(1, 11))


def test_bm25_searches_the_documents_words(bm25: Index) -> None:
    doc = bm25.document("1")
    words = doc.contents.split()
    assert len(words) > 20
    want = [h for h in bm25.search(" ".join(words[:SIMILAR_WORDS]), 11) if h.doc_id != "1"][:10]
    got = similar(bm25, "1", 10, with_text=True)
    assert [(h.doc_id, h.score) for h in got] == [(h.doc_id, h.score) for h in want]
    assert got[0].text and got[0].doc_id == "484"


def test_a_document_without_words(bm25: Index, dense: Index) -> None:
    assert bm25.document("471").contents.split() == []
    for index in (bm25, dense):  # nothing to search with; its dense vector is zero, like nothing
        with pytest.warns(TesseraWarning, match="document '471' has no words to search by"):
            assert similar(index, "471") == []


def test_a_document_of_stopwords_warns_on_bm25(tmp_path: Path) -> None:
    """It gave an empty list without a word, where an empty document warned."""
    from tessera.indexing.builder import build_index

    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"_id": "y", "text": "the of and ?!"}\n{"_id": "x", "text": "river forest"}\n')
    index = Index.load(build_index(corpus, tmp_path / "idx", "bm25", show_progress=False))
    with pytest.warns(
        TesseraWarning, match="document 'y' has no words to search by \\(none but stopwords\\)"
    ):
        assert similar(index, "y") == []


def test_unknown_documents_are_refused(bm25: Index) -> None:
    with pytest.raises(TesseraError, match="no document 'nope'") as bad:
        similar(bm25, "nope")
    assert bad.value.field == "doc_id"
    with pytest.raises(TesseraError):
        similar(bm25, "1", 0)


def test_cli_and_service(cranfield_bm25: Path, bm25: Index, dense: Index) -> None:
    from tessera.serve import ServeSettings, create_app
    from tests.serve.conftest import wait_ready

    shown = json.loads(run_cli("similar", str(cranfield_bm25), "1", "-k", "5", "--json").stdout)
    assert [h["doc_id"] for h in shown] == [h.doc_id for h in similar(bm25, "1", 5)]
    bad = run_cli("similar", str(cranfield_bm25), "nope", check=False)
    assert bad.returncode == 1 and "field 'doc_id'" in bad.stderr

    indexes = {"bm25": bm25, "dense": dense}
    settings = ServeSettings(indexes={name: str(index.root) for name, index in indexes.items()})
    app = create_app(settings, load=lambda path: next(i for i in indexes.values() if i.root == Path(path)))
    with TestClient(app) as client:
        wait_ready(client.get)
        got = client.get("/v1/similar/484", params={"index": "dense", "k": 4}).json()
        assert [h["doc_id"] for h in got["results"][0]["hits"]] == [
            h.doc_id for h in similar(dense, "484", 4)
        ]
        assert got["results"][0]["hits"][0]["title"]
        missing = client.get("/v1/similar/nope", params={"index": "dense"})
        assert missing.status_code == 404 and "no document 'nope'" in missing.json()["error"]
