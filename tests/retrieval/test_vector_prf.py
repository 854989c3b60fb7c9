"""Vector pseudo-relevance feedback (retrieval/vector_prf.py) against numpy on real vectors."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from tessera.errors import TesseraError
from tessera.indexing.reindex import reindex
from tessera.models.registry import load_encoder
from tessera.retrieval.index import Index
from tessera.retrieval.vector_prf import VectorPrf, split_vector_prf

QUERIES = [
    "what similarity laws must be obeyed when constructing aeroelastic models of heated high speed aircraft",
    "boundary layer transition on a flat plate",
    "heat transfer at hypersonic speeds",
]


def expected_rows(index_dir: Path, depth: int, alpha: float, beta: float, k: int):
    """q' = alpha q + beta mean(top-depth document vectors), scored against every document."""
    docs = faiss.read_index(str(index_dir / "vectors.faiss")).reconstruct_n(0, 1400)
    queries = load_encoder("minilm").encode_queries(QUERIES)
    top = np.argsort(-(queries @ docs.T), axis=1, kind="stable")[:, :depth]
    scores = (alpha * queries + beta * docs[top].mean(axis=1)) @ docs.T
    return [(np.argsort(-row, kind="stable")[:k], row) for row in scores]


def test_feedback_moves_the_query_to_its_top_documents(cranfield_dense: Path) -> None:
    index = Index.load(cranfield_dense, search_params={"prf_depth": 5})
    plain = Index.load(cranfield_dense).batch_search(QUERIES, k=20)
    rows = index.batch_search(QUERIES, k=20)
    for hits, before, (order, scores) in zip(
        rows, plain, expected_rows(cranfield_dense, 5, 0.4, 0.6, 20), strict=True
    ):
        assert [h.doc_id for h in hits] == [index.doc_ids[i] for i in order]
        np.testing.assert_allclose([h.score for h in hits], scores[order], rtol=1e-5, atol=1e-5)
        assert [h.doc_id for h in hits] != [h.doc_id for h in before]
    weighted = Index.load(cranfield_dense, search_params={"prf_depth": 3, "prf_alpha": 1, "prf_beta": 0.5})
    for hits, (order, _) in zip(
        weighted.batch_search(QUERIES, k=10), expected_rows(cranfield_dense, 3, 1, 0.5, 10), strict=True
    ):
        assert [h.doc_id for h in hits] == [weighted.doc_ids[i] for i in order]


def test_an_ivf_index_reads_its_feedback_through_a_direct_map(cranfield_dense: Path, tmp_path: Path) -> None:
    """IVF-Flat stores exact vectors but no label -> vector map; one is made on first use.
    At nprobe = nlist its search is exact, so feedback gives Flat's ranking."""
    ivf = reindex(cranfield_dense, tmp_path / "ivf", "IVF16,Flat", {"nprobe": 16}, show_progress=False)
    flat = Index.load(cranfield_dense, search_params={"prf_depth": 5}).batch_search(QUERIES, k=10)
    got = Index.load(ivf, search_params={"prf_depth": 5}).batch_search(QUERIES, k=10)
    for a, b in zip(got, flat, strict=True):
        assert [h.doc_id for h in a] == [h.doc_id for h in b]
        np.testing.assert_allclose([h.score for h in a], [h.score for h in b], rtol=1e-5, atol=1e-5)


def test_kinds_without_stored_float_vectors_refuse_feedback(cranfield_dense: Path, tmp_path: Path) -> None:
    binary = reindex(cranfield_dense, tmp_path / "bin", "binary", show_progress=False)
    with pytest.raises(TesseraError, match="not a binary index") as caught:
        Index.load(binary, search_params={"prf_depth": 5})
    assert caught.value.field == "prf_depth"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"prf_depth": 2.5}, "whole number"),
        ({"prf_depth": -1}, "whole number"),
        ({"prf_alpha": 0.5}, "need prf_depth >= 1"),
        ({"prf_depth": 5, "prf_beta": "lots"}, "must be a number"),
        ({"prf_depth": 5, "prf_alpha": 0, "prf_beta": 0}, "not both 0"),
    ],
)
def test_bad_feedback_settings_are_refused(params: dict, message: str) -> None:
    with pytest.raises(TesseraError, match=message):
        split_vector_prf(params)


def test_settings_split_from_the_other_parameters() -> None:
    assert split_vector_prf({"nprobe": 8, "prf_depth": 0}) == (None, {"nprobe": 8})
    assert split_vector_prf({"prf_depth": 5.0, "efSearch": 64}) == (VectorPrf(5), {"efSearch": 64})
