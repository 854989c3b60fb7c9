from __future__ import annotations

import pytest

from tessera.errors import TesseraError
from tessera.retrieval.fusion import fuse, hybrid_search, reciprocal_rank_fusion, weighted_score_fusion
from tessera.retrieval.hits import Hit


def run(qid: str, *doc_ids: str) -> dict[str, list[Hit]]:
    return {qid: [Hit(d, 10.0 - r, r) for r, d in enumerate(doc_ids, start=1)]}


def test_rrf_matches_hand_computation() -> None:
    fused = reciprocal_rank_fusion([run("q", "a", "b", "c"), run("q", "c", "a", "d")], k=60)
    expected = {"a": 1 / 61 + 1 / 62, "c": 1 / 63 + 1 / 61, "b": 1 / 62, "d": 1 / 63}
    assert [h.doc_id for h in fused["q"]] == ["a", "c", "b", "d"]
    assert [h.score for h in fused["q"]] == pytest.approx([expected[h.doc_id] for h in fused["q"]])
    assert [h.rank for h in fused["q"]] == [1, 2, 3, 4]


def test_rrf_depth_and_queries_missing_from_one_run() -> None:
    fused = reciprocal_rank_fusion(
        [run("q", "a", "b", "c"), {**run("q", "c"), **run("r", "x")}], k=60, depth=2, top=2
    )
    # c is cut at depth 2 in the first run, so only the second run counts for it; ties go by id.
    assert [(h.doc_id, h.score) for h in fused["q"]] == [
        ("a", pytest.approx(1 / 61)),
        ("c", pytest.approx(1 / 61)),
    ]
    assert [h.doc_id for h in fused["r"]] == ["x"]


def test_a_run_without_hits_fuses_as_nothing_retrieved() -> None:
    """BM25 finds nothing for a word it never saw: the dense run alone is fused, not a crash."""
    empty = {"q": []}
    rrf = reciprocal_rank_fusion([run("q", "a", "b"), empty], k=60)
    assert [(h.doc_id, h.score) for h in rrf["q"]] == [
        ("a", pytest.approx(1 / 61)),
        ("b", pytest.approx(1 / 62)),
    ]
    wsum = weighted_score_fusion([empty, run("q", "a", "b")], [1.0, 1.0])
    assert [(h.doc_id, h.score) for h in wsum["q"]] == [("a", 1.0), ("b", 0.0)]
    assert reciprocal_rank_fusion([empty, empty]) == {"q": []}


def test_hybrid_search_fuses_two_real_indexes(cranfield_bm25, cranfield_dense) -> None:
    from tessera.retrieval.index import Index

    bm25, dense = Index.load(cranfield_bm25), Index.load(cranfield_dense)
    query = "what similarity laws must be obeyed when constructing aeroelastic models"
    hits = hybrid_search([bm25, dense], [query], k=5)[0]
    lexical = {h.doc_id: h.rank for h in bm25.search(query, k=1000)}
    semantic = {h.doc_id: h.rank for h in dense.search(query, k=1000)}
    expected = {d: sum(1 / (60 + r[d]) for r in (lexical, semantic) if d in r) for d in {*lexical, *semantic}}
    best = sorted(expected, key=lambda d: (-expected[d], d))[:5]
    assert [h.doc_id for h in hits] == best
    assert [h.score for h in hits] == pytest.approx([expected[d] for d in best])
    nowhere = hybrid_search([bm25, dense], ["xyzzy plugh"], k=3)[0]  # no word BM25 knows
    assert [h.doc_id for h in nowhere] == [h.doc_id for h in dense.search("xyzzy plugh", k=3)]


def test_wsum_matches_hand_computation() -> None:
    first = {"q": [Hit("a", 9.0, 1), Hit("b", 6.0, 2), Hit("c", 3.0, 3)]}
    second = {"q": [Hit("c", 0.9, 1), Hit("a", 0.5, 2), Hit("d", 0.4, 3)]}
    fused = weighted_score_fusion([first, second], weights=[0.25, 0.75])
    # min-max per run: a 1, b 0.5, c 0 | c 1, a 0.2, d 0
    expected = {"a": 0.25 + 0.75 * 0.2, "b": 0.25 * 0.5, "c": 0.75, "d": 0.0}
    assert [h.doc_id for h in fused["q"]] == ["c", "a", "b", "d"]
    assert [h.score for h in fused["q"]] == pytest.approx([expected[h.doc_id] for h in fused["q"]])
    equal = weighted_score_fusion([first, second])
    assert [h.doc_id for h in equal["q"]] == ["a", "c", "b", "d"]  # a 1.2, c 1.0, b 0.5, d 0
    assert fuse([first, second], "wsum") == equal


def test_wsum_weights_are_checked() -> None:
    runs = [run("q", "a"), run("q", "b")]
    with pytest.raises(TesseraError, match="1 weights for 2 runs") as info:
        weighted_score_fusion(runs, weights=[1.0])
    assert info.value.field == "weights"
    with pytest.raises(TesseraError, match="not all 0"):
        weighted_score_fusion(runs, weights=[0.0, 0.0])
    with pytest.raises(TesseraError, match="not all 0"):
        weighted_score_fusion(runs, weights=[-1.0, 2.0])
    with pytest.raises(TesseraError, match="their sum overflows"):  # every fused score would be inf
        weighted_score_fusion(runs, weights=[1e308, 1e308])
    with pytest.raises(TesseraError, match="takes no weights"):
        fuse(runs, "rrf", weights=[0.5, 0.5])
    with pytest.raises(TesseraError, match="unknown fusion 'max'") as info:
        fuse(runs, "max")
    assert info.value.field == "fusion"


def test_wsum_on_two_real_indexes(cranfield_bm25, cranfield_dense) -> None:
    """Each index's own scores, min-max normalised over its top 100 per query, summed 1:3."""
    from tessera.retrieval.index import Index

    bm25, dense = Index.load(cranfield_bm25), Index.load(cranfield_dense)
    query = "what similarity laws must be obeyed when constructing aeroelastic models"
    hits = hybrid_search([bm25, dense], [query], k=5, depth=100, fusion="wsum", weights=[1, 3])[0]
    expected: dict[str, float] = {}
    for index, weight in ((bm25, 1.0), (dense, 3.0)):
        scores = {h.doc_id: h.score for h in index.search(query, k=100)}
        low, high = min(scores.values()), max(scores.values())
        for doc_id, value in scores.items():
            expected[doc_id] = expected.get(doc_id, 0.0) + weight * (value - low) / (high - low)
    best = sorted(expected, key=lambda d: (-expected[d], d))[:5]
    assert [h.doc_id for h in hits] == best
    assert [h.score for h in hits] == pytest.approx([expected[d] for d in best], abs=1e-5)
