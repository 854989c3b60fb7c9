from __future__ import annotations

import json
import shutil
from pathlib import Path

import faiss
import numpy as np
import pytest

from tessera.errors import EncoderError, IndexFormatError
from tessera.indexing.manifest import Manifest
from tessera.models.bm25 import TITLE_WEIGHT
from tessera.models.registry import load_encoder
from tessera.retrieval.index import Index
from tests.conftest import run_cli


def test_dense_flat_equals_brute_force_numpy(cranfield_dense: Path) -> None:
    index = Index.load(cranfield_dense)
    stored = faiss.read_index(str(cranfield_dense / "vectors.faiss"))
    doc_vectors = stored.reconstruct_n(0, stored.ntotal)
    encoder = load_encoder("minilm")
    # The stored vectors are the documents' embeddings, unit length (inner product = cosine),
    # but the zero vector for Cranfield's two documents without words (471 and 995)
    first = encoder.encode_docs([index.document(index.doc_ids[0]).contents])[0]
    np.testing.assert_allclose(doc_vectors[0], first, atol=1e-5)
    blank = [i for i, doc_id in enumerate(index.doc_ids) if not index.document(doc_id).contents.strip()]
    assert [index.doc_ids[i] for i in blank] == ["471", "995"]
    expected = np.ones(len(doc_vectors))
    expected[blank] = 0.0
    np.testing.assert_allclose(np.linalg.norm(doc_vectors, axis=1), expected, atol=1e-5)

    queries = [
        "what similarity laws must be obeyed when constructing aeroelastic models",
        "boundary layer transition on a flat plate",
        "heat transfer at hypersonic speeds",
    ]
    scores = encoder.encode_queries(queries) @ doc_vectors.T
    for query, row, hits in zip(queries, scores, index.batch_search(queries, k=20), strict=True):
        order = np.argsort(-row, kind="stable")[:20]
        assert [hit.doc_id for hit in hits] == [index.doc_ids[i] for i in order], query
        np.testing.assert_allclose([hit.score for hit in hits], row[order], rtol=1e-5, atol=1e-5)
        assert [hit.rank for hit in hits] == list(range(1, 21))


def test_search_returns_text_on_request(cranfield_bm25: Path) -> None:
    index = Index.load(cranfield_bm25)
    hits = index.search("boundary layer transition", k=3, with_text=True)
    assert len(hits) == 3 and hits[0].score >= hits[1].score >= hits[2].score
    assert "boundary" in (hits[0].title + hits[0].text).lower()
    assert index.search("boundary layer transition", k=3)[0].text is None


def test_a_small_bm25_index_is_one_lucene_segment(cranfield_bm25: Path) -> None:
    """One writer thread below 100k documents: one segment, searched as fast as pyserini's."""
    from tessera.indexing.lucene_backend import indexing_threads

    files = (cranfield_bm25 / "lucene").glob("_*")
    segments = {path.name.split(".")[0].split("_Lucene")[0] for path in files}
    assert segments == {"_0"}
    assert indexing_threads(99_999) == 1 and indexing_threads(100_000) >= 1


class WrongDimEncoder:
    spec, dim, multi_vector = "test-128", 128, False

    def encode_queries(self, texts):
        return np.zeros((len(texts), 128), np.float32)

    encode_docs = encode_queries


def test_encoder_dimension_mismatch(cranfield_dense: Path) -> None:
    with pytest.raises(EncoderError, match="dimension mismatch: index holds 384-d vectors") as info:
        Index.load(cranfield_dense, encoder=WrongDimEncoder())
    assert info.value.field == "dim"


def test_manifest_that_lies_about_the_dimension(cranfield_dense: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(cranfield_dense, tmp_path / "copy"))
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "dim": 128}))
    with pytest.raises(EncoderError, match="dimension mismatch"):
        Index.load(copy)


def test_truncated_vectors_file_fails_on_load(cranfield_dense: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(cranfield_dense, tmp_path / "copy"))
    vectors = copy / "vectors.faiss"
    vectors.write_bytes(vectors.read_bytes()[: vectors.stat().st_size // 2])
    with pytest.raises(IndexFormatError, match="truncated") as info:
        Index.load(copy)
    assert info.value.file == str(vectors)


CRANFIELD_QUERIES = [
    "what similarity laws must be obeyed when constructing aeroelastic models of heated high speed aircraft",
    "boundary layer transition on a flat plate",
    "heat transfer at hypersonic speeds",
]


@pytest.mark.parametrize("prf", ["rm3", "rocchio"])
def test_bm25_expansion_is_exactly_pyserinis(cranfield_bm25: Path, prf: str) -> None:
    """RM3/Rocchio through Tessera (batched: Anserini's thread pool) rank and score as pyserini's
    LuceneSearcher does with its defaults on the same Lucene index, one query at a time, over
    the same fields (contents and the weighted title)."""
    from tessera.indexing.jvm import pyserini

    pyserini()
    from pyserini.search.lucene import LuceneSearcher

    reference = LuceneSearcher(str(cranfield_bm25 / "lucene"))
    reference.set_bm25(0.9, 0.4)
    reference.set_rm3() if prf == "rm3" else reference.set_rocchio()
    expanded = Index.load(cranfield_bm25, search_params={"prf": prf})
    plain = Index.load(cranfield_bm25).batch_search(CRANFIELD_QUERIES, k=20)
    for query, hits, before in zip(
        CRANFIELD_QUERIES, expanded.batch_search(CRANFIELD_QUERIES, k=20), plain, strict=True
    ):
        expected = reference.search(query, 20, fields={"contents": 1.0, "title": TITLE_WEIGHT})
        assert [hit.doc_id for hit in hits] == [hit.docid for hit in expected], query
        np.testing.assert_allclose([hit.score for hit in hits], [hit.score for hit in expected], rtol=1e-6)
        assert [hit.doc_id for hit in hits] != [hit.doc_id for hit in before]  # expansion changed the ranking


def test_bm25_settings_are_search_parameters(cranfield_bm25: Path) -> None:
    stored = Index.load(cranfield_bm25).search(CRANFIELD_QUERIES[1], k=10)
    other = Index.load(cranfield_bm25, search_params={"k1": 1.2, "b": 0.75}).search(
        CRANFIELD_QUERIES[1], k=10
    )
    assert [h.score for h in stored] != pytest.approx([h.score for h in other])
    with pytest.raises(EncoderError, match="not nprobe"):
        Index.load(cranfield_bm25, search_params={"nprobe": 16})


def test_the_title_weight_is_a_search_parameter_and_one_query_searches_as_a_batch(
    cranfield_bm25: Path,
) -> None:
    """One query goes through Anserini's `search_fields`, several through its threaded
    `batch_search_fields`: the same ranking and scores; title=0 is the one-field search."""
    weighted = Index.load(cranfield_bm25)  # the stored default, title=0.25
    assert "title=0.25" in weighted.manifest.encoder
    plain = Index.load(cranfield_bm25, search_params={"title": 0})
    batch = weighted.batch_search(CRANFIELD_QUERIES, k=10)
    for query, hits in zip(CRANFIELD_QUERIES, batch, strict=True):
        one = weighted.search(query, k=10)
        assert [(h.doc_id, h.score) for h in one] == [(h.doc_id, h.score) for h in hits]
    changed = [
        [h.score for h in a] != pytest.approx([h.score for h in b])
        for a, b in zip(batch, plain.batch_search(CRANFIELD_QUERIES, k=10), strict=True)
    ]
    assert all(changed)


def test_expansion_on_an_index_without_document_vectors_says_rebuild(
    cranfield_head: Path, tmp_path: Path
) -> None:
    """Indexes built before Tessera stored document vectors (or titles) still search, but not
    with prf (or a title weight); their stored spec names no title weight, so it reads as 0."""
    from tessera.data.corpus import open_corpus
    from tessera.indexing.jvm import java_class

    run_index = tmp_path / "old"
    run_cli("index", str(cranfield_head), "-o", str(run_index), "--encoder", "bm25")
    manifest = Manifest.read(run_index)
    manifest.encoder = "bm25:k1=0.9,b=0.4"  # what Tessera stored then
    manifest.write(run_index)
    shutil.rmtree(run_index / "lucene")
    # The indexer Tessera used before: no document vectors.
    writer = java_class("io.anserini.index.SimpleIndexer")(str(run_index / "lucene"), False, 1)
    make = java_class("io.anserini.collection.JsonCollection$Document").fromFields
    for doc in open_corpus(cranfield_head):
        writer.addJsonDocument(make(doc.id, doc.contents))
    writer.close()
    assert Index.load(run_index, verify=False).search("boundary layer", k=3)
    with pytest.raises(IndexFormatError, match="does not store .*rebuild it"):
        Index.load(run_index, verify=False, search_params={"prf": "rm3"})
    with pytest.raises(IndexFormatError, match="title field, which this BM25 index does not have.*rebuild"):
        Index.load(run_index, verify=False, search_params={"title": 0.25})


def test_parameters_of_indexes_searched_together_go_to_their_kind() -> None:
    from tessera.errors import TesseraError
    from tessera.retrieval.params import route_params

    params = {"nprobe": 16.0, "prf": "rm3"}
    assert route_params(["faiss", "lucene"], params) == [{"nprobe": 16.0}, {"prf": "rm3"}]
    assert route_params(["lucene", "tokens"], {"mode": "xtr"}) == [{}, {"mode": "xtr"}]
    feedback = {"prf": "rocchio", "prf_depth": 5}  # each kind's own feedback
    assert route_params(["faiss", "lucene"], feedback) == [{"prf_depth": 5}, {"prf": "rocchio"}]
    with pytest.raises(TesseraError, match="prf applies to BM25 indexes only"):
        route_params(["faiss"], {"prf": "rm3"})
    with pytest.raises(TesseraError, match="nprobe does not apply to a BM25 index"):
        route_params(["lucene"], params)


def test_count_parameters_below_one_are_refused_wherever_they_are_set(cranfield_dense: Path) -> None:
    """faiss asserts on nprobe=0 and silently returns fewer hits with efSearch=0."""
    from tessera.errors import TesseraError
    from tessera.retrieval.params import parse_params

    for given in ("nprobe=0", "efSearch=-3", "k_factor=0.5"):
        with pytest.raises(TesseraError, match=f"'{given.split('=')[0]}' must be at least 1"):
            parse_params([given])
    with pytest.raises(TesseraError, match="'nprobe' must be at least 1"):
        Index.load(cranfield_dense, search_params={"nprobe": 0})
    given = parse_params(["nprobe=1", "efSearch=16", "mode=sdc"])
    assert given == {"nprobe": 1.0, "efSearch": 16.0, "mode": "sdc"}


def test_a_k_beyond_the_index_gives_every_document_once(cranfield_dense: Path, cranfield_bm25: Path) -> None:
    """A k of a hundred million is clamped to the index's size, not allocated per row."""
    dense = Index.load(cranfield_dense).search("boundary layer", k=10**8)
    assert len(dense) == 1400 and len({hit.doc_id for hit in dense}) == 1400
    assert [hit.rank for hit in dense[:3]] == [1, 2, 3]
    assert len(Index.load(cranfield_bm25).search("boundary layer", k=10**8)) <= 1400


def test_a_long_bm25_query_of_many_distinct_terms_is_searched(cranfield_bm25: Path) -> None:
    """Over 1,024 distinct words (one clause each, a field) passed Lucene's default clause limit."""
    words = " ".join(f"w{i}" for i in range(1100)) + " boundary layer"
    hits = Index.load(cranfield_bm25).search(words, k=5)
    assert len(hits) == 5 and hits == Index.load(cranfield_bm25).search("boundary layer", k=5)
