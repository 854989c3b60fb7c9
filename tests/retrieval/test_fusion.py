from __future__ import annotations

import pytest

from tessera.retrieval.fusion import reciprocal_rank_fusion
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


def test_hybrid_search_fuses_two_real_indexes(cranfield_bm25, cranfield_dense) -> None:
    from tessera.retrieval.fusion import hybrid_search
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
