"""One `Index` object shared: searched from threads while it is updated, refreshed to another
object's update, closed; and the Python API's arguments as Python callers pass them (numpy
integers, one string where a list is due), checked by name before any library sees them."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from tessera.errors import TesseraError
from tessera.retrieval.index import Index
from tessera.retrieval.query_set import search_run
from tessera.retrieval.similar import similar

QUERY = "boundary layer transition"


@pytest.fixture(scope="module")
def head_bm25(cranfield_head: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tessera.indexing.builder import build_index

    out = tmp_path_factory.mktemp("sharing") / "bm25"
    return build_index(cranfield_head / "corpus.jsonl", out, encoder="bm25", show_progress=False)


def one_document(tmp_path: Path) -> Path:
    path = tmp_path / "extra.jsonl"
    path.write_text(json.dumps({"_id": "extra", "text": "a quetzal over the boundary layer"}) + "\n")
    return path


def test_searches_on_other_threads_never_see_an_update_closing_files(head_bm25: Path, tmp_path: Path) -> None:
    """On BM25 a search reading a Lucene reader the update had closed crashed the JVM (SIGSEGV)."""
    root = Path(shutil.copytree(head_bm25, tmp_path / "idx"))
    index = Index.load(root)
    expected = index.search(QUERY, k=5, with_text=True)
    extra = one_document(tmp_path)
    failures: list[BaseException] = []
    answers: list[list[str]] = []
    stop = threading.Event()

    def search() -> None:
        while not stop.is_set():
            try:
                answers.append([h.doc_id for h in index.search(QUERY, k=5, with_text=True)])
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)

    threads = [threading.Thread(target=search) for _ in range(2)]
    for thread in threads:
        thread.start()
    for _ in range(3):
        index.add(extra)
        index.delete(["extra"])
    stop.set()
    for thread in threads:
        thread.join()
    assert not failures, failures[:3]
    assert answers and all(len(row) == 5 for row in answers)
    after = index.search(QUERY, k=5)
    assert [h.doc_id for h in after] == [h.doc_id for h in expected]
    assert [h.score for h in after] == pytest.approx([h.score for h in expected], abs=1e-5)


def test_refresh_opens_another_objects_update_and_a_closed_index_says_so(
    head_bm25: Path, tmp_path: Path
) -> None:
    root = Path(shutil.copytree(head_bm25, tmp_path / "idx"))
    writer, reader = Index.load(root), Index.load(root)
    assert reader.refresh() is False
    writer.add(one_document(tmp_path))
    assert len(reader) == 150 and reader.search("quetzal", k=5) == []
    assert reader.refresh() is True and len(reader) == 151
    assert [h.doc_id for h in reader.search("quetzal", k=5)] == ["extra"]
    reader.close()
    for call in (lambda: reader.search(QUERY), lambda: reader.document("1"), lambda: reader.with_text([[]])):
        with pytest.raises(TesseraError, match="this Index was closed: load it again") as info:
            call()
        assert info.value.file == str(root)


def test_numpy_integers_are_counts_everywhere(cranfield_dense: Path) -> None:
    """A k computed with numpy reached faiss, whose SWIG wrapper refused it."""
    index = Index.load(cranfield_dense)
    hits = index.search(QUERY, k=np.int64(3))
    assert [h.doc_id for h in hits] == [h.doc_id for h in index.search(QUERY, k=3)]
    assert len(index.search_vectors(index.stored_vectors(["1"]), np.int32(2))[0]) == 2
    assert len(similar(index, "1", np.int64(4))) == 4
    assert len(search_run([index], {"q": QUERY}, k=np.int64(2), show_progress=False)["q"]) == 2


@pytest.mark.parametrize(
    ("call", "field", "says"),
    [
        (lambda ix: ix.search(QUERY, k=True), "k", "must be a whole number, got bool True"),
        (lambda ix: ix.search(QUERY, k=3.0), "k", "must be a whole number, got float 3.0"),
        (lambda ix: ix.search(QUERY, k=None), "k", "must be a whole number, got NoneType None"),
        (lambda ix: ix.search(None), "query", "must be text, got NoneType"),
        (lambda ix: ix.search(b"wing"), "query", "must be text, got bytes"),
        (lambda ix: ix.batch_search(QUERY), "queries", "not a str; for one, give"),
        (lambda ix: ix.batch_search([QUERY, 7]), "queries[1]", "must be a string, got int"),
        (lambda ix: ix.search(QUERY, doc_ids="12"), "doc_ids", "not a str; for one, give \\['12'\\]"),
        (lambda ix: ix.delete("12"), "ids", "not a str; for one, give \\['12'\\]"),
        (lambda ix: ix.delete(None), "ids", "not a NoneType"),
        (lambda ix: search_run(ix, [QUERY]), "queries", "a mapping of query id to text"),
        (lambda ix: ix.search_vectors(np.zeros((1, 384), "float32"), 3), "vectors", "not a lucene index"),
    ],
)
def test_wrong_argument_types_are_named(head_bm25: Path, call, field: str, says: str) -> None:
    """`delete("12")` deleted documents 1 and 2: a string is refused where a list is due."""
    index = Index.load(head_bm25)
    before = len(index)
    with pytest.raises(TesseraError, match=says) as info:
        call(index)
    assert info.value.field == field and len(Index.load(head_bm25)) == before
