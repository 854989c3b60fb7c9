"""Late-interaction scoring: MaxSim against brute force, XTR by hand, both modes through `Index`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tessera.errors import EncoderError, TesseraError
from tessera.indexing.token_backend import TokenBackend
from tessera.models.registry import load_encoder
from tessera.retrieval import late_interaction
from tessera.retrieval.index import Index
from tessera.retrieval.late_interaction import colbert_rerank, maxsim, xtr_score

QUERIES = [
    "what similarity laws must be obeyed when constructing aeroelastic models",
    "boundary layer transition on a flat plate",
    "heat transfer at hypersonic speeds",
]


class ListStore:
    """Documents' token matrices in memory, behind the DocTokenStore interface."""

    def __init__(self, docs: list[np.ndarray]):
        self.docs = docs

    def doc_tokens(self, ordinals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        chosen = [self.docs[i] for i in ordinals]
        return np.concatenate(chosen), np.array([len(d) for d in chosen])


def brute_maxsim(query: np.ndarray, doc: np.ndarray) -> float:
    return float(sum(max(float(q @ t) for t in doc) for q in query))


@pytest.fixture(scope="module")
def encoded(token_model: Path, cranfield_head: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """50 real Cranfield documents and three queries as token matrices."""
    encoder = load_encoder(f"colbert:{token_model}")
    records = [json.loads(line) for line in (cranfield_head / "corpus.jsonl").read_text().splitlines()[:50]]
    docs = encoder.encode_docs([f"{r['title']} {r['text']}".strip() for r in records])
    return docs, encoder.encode_queries(QUERIES)


def test_maxsim_equals_brute_force_on_cranfield(encoded, monkeypatch) -> None:
    docs, queries = encoded
    monkeypatch.setattr(late_interaction, "RERANK_DOCS", 7)  # several chunks, one ragged
    ids = np.arange(len(docs))
    for query in queries:
        expected = np.array([brute_maxsim(query, doc) for doc in docs])
        scores = colbert_rerank(query, ids, ListStore(docs))
        np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-4)
        assert list(np.argsort(-scores, kind="stable")[:10]) == list(
            np.argsort(-expected, kind="stable")[:10]
        )
        # Candidates in any order score the same.
        shuffled = np.random.default_rng(0).permutation(ids)
        np.testing.assert_allclose(
            colbert_rerank(query, shuffled, ListStore(docs)), expected[shuffled], atol=1e-4
        )


def test_maxsim_gives_empty_documents_zero() -> None:
    query = np.eye(2, dtype=np.float32)
    tokens = np.array([[1, 0], [0.5, 0.5], [0, 1]], dtype=np.float32)
    # docs: [] , [(1,0),(0.5,0.5)], [], [(0,1)]
    np.testing.assert_allclose(maxsim(query, tokens, np.array([0, 2, 0, 1])), [0.0, 1.5, 0.0, 1.0])


@pytest.mark.parametrize("offset", [0, 10**9])  # ids close together, and far apart (sorted path)
def test_xtr_imputation_by_hand(offset: int) -> None:
    # Two query tokens, k' = 3. Rows: retrieved scores (best first) and their documents.
    scores = np.array([[0.9, 0.8, 0.5], [0.7, 0.6, 0.2]], dtype=np.float32)
    docs = np.array([[3, 1, 3], [1, 2, 1]]) + offset
    ids, values = xtr_score(scores, docs)
    # m_1 = 0.5 and m_2 = 0.2 (each row's k'-th score).
    # doc 1: q1 max(0.8) = 0.8, q2 max(0.7, 0.2) = 0.7        -> (0.8 + 0.7) / 2 = 0.75
    # doc 2: q1 retrieved none -> m_1 = 0.5, q2 0.6            -> (0.5 + 0.6) / 2 = 0.55
    # doc 3: q1 max(0.9, 0.5) = 0.9, q2 retrieved none -> 0.2  -> (0.9 + 0.2) / 2 = 0.55
    assert (ids - offset).tolist() == [1, 2, 3]
    np.testing.assert_allclose(values, [0.75, 0.55, 0.55], atol=1e-6)
    # Scored at k' = 2: m_1 = 0.8, m_2 = 0.6; doc 3 = (0.9 + 0.6) / 2, doc 1 = (0.8 + 0.7) / 2,
    # doc 2 = (0.8 + 0.6) / 2.
    ids, values = xtr_score(scores, docs, k_prime=2)
    assert (ids - offset).tolist() == [1, 2, 3]
    np.testing.assert_allclose(values, [0.75, 0.70, 0.75], atol=1e-6)


def test_xtr_ignores_missing_results() -> None:
    # faiss pads with -1 when an index holds fewer than k' tokens; m_i is the lowest real score,
    # and a query token that retrieved nothing adds 0 (it bounds nothing).
    pad = -3.4e38
    scores = np.array([[0.9, 0.4, pad], [pad, pad, pad]], dtype=np.float32)
    ids, values = xtr_score(scores, np.array([[5, 6, -1], [-1, -1, -1]]))
    assert ids.tolist() == [5, 6]
    np.testing.assert_allclose(values, [0.45, 0.2], atol=1e-6)


def stored_maxsim_ranking(index_dir: Path, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exhaustive MaxSim over every stored document, straight from the index files."""
    backend = TokenBackend(index_dir)
    vectors = np.load(index_dir / "token_vectors.npy", allow_pickle=False).astype(np.float32)
    offsets = np.load(index_dir / "doc_offsets.npy", allow_pickle=False)
    scores = np.array(
        [(query @ vectors[a:b].T).max(axis=1).sum() for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    )
    assert len(scores) == backend.doc_count
    order = np.argsort(-scores, kind="stable")
    return order, scores[order]


def test_colbert_with_every_token_retrieved_is_exhaustive_maxsim(cranfield_tokens: Path) -> None:
    total = TokenBackend(cranfield_tokens).token_count
    index = Index.load(cranfield_tokens, search_params={"k_prime": total})
    assert index.backend.mode == "colbert"
    queries = index.encoder.encode_queries(QUERIES)
    for query, hits in zip(queries, index.batch_search(QUERIES, k=len(index)), strict=True):
        order, scores = stored_maxsim_ranking(cranfield_tokens, query)
        assert [h.doc_id for h in hits] == [index.doc_ids[i] for i in order]
        np.testing.assert_allclose([h.score for h in hits], scores, rtol=1e-5, atol=1e-4)


def test_xtr_with_every_token_retrieved_is_maxsim_over_query_length(cranfield_tokens: Path) -> None:
    # When each query token retrieves all tokens nothing is imputed: XTR = MaxSim / query tokens.
    total = TokenBackend(cranfield_tokens).token_count
    colbert = Index.load(cranfield_tokens, search_params={"k_prime": total})
    xtr = Index.load(cranfield_tokens, search_params={"k_prime": total, "mode": "xtr"})
    assert xtr.backend.mode == "xtr"
    length = len(colbert.encoder.encode_queries(QUERIES[:1])[0])
    for a, b in zip(colbert.batch_search(QUERIES, 20), xtr.batch_search(QUERIES, 20), strict=True):
        assert [h.doc_id for h in a] == [h.doc_id for h in b]
        np.testing.assert_allclose([h.score / length for h in a], [h.score for h in b], atol=1e-4)


def test_small_k_prime_limits_candidates_and_imputes(cranfield_tokens: Path) -> None:
    index = Index.load(cranfield_tokens, search_params={"k_prime": 5, "mode": "xtr"})
    search = index.backend
    query = index.encoder.encode_queries(QUERIES[1:2])
    (hits,) = search.retrieve_tokens(query)
    assert hits.scores.shape == hits.doc_ids.shape == (len(query[0]), 5)
    candidates = hits.candidates()
    ranked = index.search(QUERIES[1], k=len(index))
    assert sorted(index.doc_ids.index(h.doc_id) for h in ranked) == candidates.tolist()
    assert len(candidates) < len(index)
    # The same candidates under both scorings: the benchmark's like-for-like comparison.
    ids, xtr_scores = xtr_score(hits.scores, hits.doc_ids)
    assert ids.tolist() == candidates.tolist()
    assert colbert_rerank(query[0], candidates, search.tokens).shape == xtr_scores.shape


def test_bad_search_parameters(cranfield_tokens: Path) -> None:
    with pytest.raises(TesseraError, match="mode must be one of colbert, xtr") as info:
        Index.load(cranfield_tokens, search_params={"mode": "bm25"})
    assert info.value.field == "mode"
    with pytest.raises(TesseraError, match="k_prime must be a positive whole number"):
        Index.load(cranfield_tokens, search_params={"k_prime": 0})
    with pytest.raises(TesseraError, match="does not apply"):
        Index.load(cranfield_tokens, search_params={"nprobe": 4})


def test_dense_encoder_on_a_token_index_is_refused(cranfield_tokens: Path) -> None:
    with pytest.raises(EncoderError, match="makes single vectors; this is a tokens index"):
        Index.load(cranfield_tokens, encoder=load_encoder("minilm"))
