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
