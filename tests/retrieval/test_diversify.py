"""MMR (retrieval/diversify.py) on Cranfield: weight 1 keeps the ranking, every pick maximises
the MMR objective over the bundled MiniLM's vectors, a context becomes less alike, and the CLI,
query sets and RAG pick the same hits as the Python call."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tessera.errors import TesseraError
from tessera.rag.pipeline import prepare
from tessera.retrieval.diversify import Mmr, as_mmr, diversify, mmr_order, rescaled
from tessera.retrieval.index import Index
from tessera.retrieval.query_set import search_one, search_run
from tessera.retrieval.rerank import load_reranker
from tessera.retrieval.rerank.base import hit_text
from tests.conftest import run_cli

QUERIES = ["boundary layer transition", "heat transfer to a blunt body", "propeller slipstream lift"]


def vectors_of(hits) -> np.ndarray:
    found = np.stack(load_reranker("minilm").doc_vectors([hit_text(h) for h in hits]))
    return found / np.linalg.norm(found, axis=1, keepdims=True)


def likeness(hits) -> float:
    """Mean cosine between the hits, pair by pair."""
    sims = vectors_of(hits) @ vectors_of(hits).T
    return float(sims[np.triu_indices(len(hits), 1)].mean())


def test_a_near_copy_waits_behind_a_different_document() -> None:
    vectors = np.array([[1.0, 0.0], [0.999, 0.0447], [0.0, 1.0]])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    relevance = np.array([1.0, 0.9, 0.5])
    assert [i for i, _ in mmr_order(relevance, vectors, 3, 0.5)] == [0, 2, 1]
    assert [i for i, _ in mmr_order(relevance, vectors, 3, 1.0)] == [0, 1, 2]
    assert [round(v, 4) for _, v in mmr_order(relevance, vectors, 3, 0.5)] == [0.5, 0.25, -0.0495]
    assert rescaled(np.array([2.0, 2.0])).tolist() == [1.0, 1.0]


def test_blank_documents_do_not_crowd_the_picks_for_their_novelty() -> None:
    """A blank document's zero vector is cosine 0 to everything: counted as novel, three of them
    took 10 picks' middle places; counted as like whatever is picked, they come last."""
    vectors = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 0.0], [0.0, 0.0]])
    relevance = np.array([1.0, 0.8, 0.7, 0.3, 0.3])
    assert [i for i, _ in mmr_order(relevance, vectors, 5, 0.5)] == [0, 2, 1, 3, 4]


@pytest.mark.parametrize("kind", ["bm25", "dense"])
def test_weight_one_keeps_the_ranking(kind: str, request: pytest.FixtureRequest) -> None:
    index: Index = request.getfixturevalue(kind)
    for query in QUERIES:
        plain = search_one([index], query, 10)
        kept = search_one([index], query, 10, mmr=1.0)
        assert [h.doc_id for h in kept] == [h.doc_id for h in plain]
        assert all(a.score > b.score for a, b in zip(kept, kept[1:], strict=False))


def test_every_pick_maximises_the_objective(cranfield_bm25: Path) -> None:
    bm25 = Index.load(cranfield_bm25, search_params={"title": 0})  # the ranking the ids below come from
    pool = search_one([bm25], QUERIES[2], 20)
    picked = search_one([bm25], QUERIES[2], 10, mmr=Mmr(0.5, depth=20))
    assert picked[0].doc_id == pool[0].doc_id and {h.doc_id for h in picked} <= {h.doc_id for h in pool}
    vectors = dict(zip([h.doc_id for h in pool], vectors_of(pool), strict=True))
    relevance = dict(zip([h.doc_id for h in pool], rescaled(np.array([h.score for h in pool])), strict=True))
    chosen: list[str] = []
    for hit in picked:

        def value(doc: str) -> float:
            penalty = max((float(vectors[doc] @ vectors[c]) for c in chosen), default=0.0)
            return 0.5 * relevance[doc] - 0.5 * penalty

        best = max((d for d in vectors if d not in chosen), key=value)
        assert hit.doc_id == best and hit.score == pytest.approx(value(best), abs=1e-5)
        chosen.append(hit.doc_id)
    assert [h.doc_id for h in picked[:5]] == ["453", "1094", "1", "1089", "1092"]  # "1064" (like 1) waits


@pytest.mark.parametrize("kind", ["bm25", "dense"])
def test_contexts_become_less_alike(kind: str, request: pytest.FixtureRequest, data_dir: Path) -> None:
    index: Index = request.getfixturevalue(kind)
    lines = (data_dir / "cranfield-beir" / "queries.jsonl").read_text().splitlines()[:12]
    queries = [json.loads(line)["text"] for line in lines]
    plain = [likeness(search_one([index], q, 5)) for q in queries]
    diverse = [likeness(search_one([index], q, 5, mmr=0.5)) for q in queries]
    assert np.mean(diverse) < np.mean(plain) - 0.02
    assert sum(d <= p + 1e-6 for d, p in zip(diverse, plain, strict=True)) >= 11


def test_query_sets_and_rag_pick_what_one_search_picks(bm25: Index, dense: Index) -> None:
    mmr = Mmr(0.7, depth=30)
    run = search_run([bm25, dense], dict(enumerate(QUERIES)), k=5, depth=100, show_progress=False, mmr=mmr)
    for n, query in enumerate(QUERIES):
        one = search_one([bm25, dense], query, 5, depth=100, mmr=mmr)
        assert [(h.doc_id, h.score) for h in run[n]] == [(h.doc_id, h.score) for h in one]
        assert run[n][0].text is None
    prompt = prepare(bm25, QUERIES[0], k=4, mmr=0.5)
    assert [s["doc_id"] for s in prompt.sources] == [
        h.doc_id for h in search_one([bm25], QUERIES[0], 4, mmr=0.5)
    ]


def test_tail_below_the_candidates_keeps_its_order(bm25: Index) -> None:
    rows = [bm25.search(QUERIES[0], 12, with_text=True)]
    out = diversify(Mmr(0.3, depth=8), rows, 4)[0]
    assert [h.doc_id for h in out[8:]] == [h.doc_id for h in rows[0][8:]]
    assert sorted(h.doc_id for h in out[:8]) == sorted(h.doc_id for h in rows[0][:8])
    assert [h.rank for h in out] == list(range(1, 13))
    assert all(a.score > b.score for a, b in zip(out, out[1:], strict=False))


def test_bad_settings_are_refused(token_model: Path) -> None:
    with pytest.raises(TesseraError, match="in \\[0, 1\\]") as bad:
        Mmr(1.5)
    assert bad.value.field == "mmr"
    with pytest.raises(TesseraError, match="whole number") as bad:
        Mmr(0.5, depth=0)
    assert bad.value.field == "mmr_depth"
    with pytest.raises(TesseraError, match="needs an MMR weight"):
        as_mmr(None, 20)
    with pytest.raises(TesseraError, match="single-vector") as bad:
        diversify(Mmr(0.5, encoder=f"colbert:{token_model}"), [[]], 5)
    assert bad.value.field == "mmr_encoder"


def test_cli_search_and_run(cranfield_bm25: Path, tmp_path: Path, bm25: Index) -> None:
    shown = run_cli("search", str(cranfield_bm25), QUERIES[2], "-k", "5", "--mmr", "0.5", "--json").stdout
    shown = json.loads(shown)
    assert [h["doc_id"] for h in shown] == [h.doc_id for h in search_one([bm25], QUERIES[2], 5, mmr=0.5)]
    queries = tmp_path / "q.tsv"
    queries.write_text("".join(f"q{n}\t{q}\n" for n, q in enumerate(QUERIES)))
    run_cli("search", str(cranfield_bm25), "--queries", str(queries), "--run", str(tmp_path / "r.trec"),
            "-k", "5", "--mmr", "0.5", "--mmr-depth", "20")  # fmt: skip
    lines = [line.split() for line in (tmp_path / "r.trec").read_text().splitlines()]
    want = search_one([bm25], QUERIES[1], 5, mmr=Mmr(0.5, depth=20))
    assert [row[2] for row in lines if row[0] == "q1"] == [h.doc_id for h in want]
    bad = run_cli("search", str(cranfield_bm25), QUERIES[0], "--mmr", "2", check=False)
    assert bad.returncode == 1 and "field 'mmr'" in bad.stderr


def test_eval_scores_the_page_mmr_picks(cranfield_dense: Path, dense: Index, data_dir: Path) -> None:
    from tessera.eval.evaluate import evaluate

    plain = evaluate([cranfield_dense], data_dir / "cranfield-beir", depth=100, show_progress=False)
    got = evaluate([cranfield_dense], data_dir / "cranfield-beir", depth=100, show_progress=False, mmr=0.5)
    assert got.inputs["first stage"] == plain.metrics and got.metrics["nDCG@10"] != plain.metrics["nDCG@10"]
    assert got.metrics["R@100"] == pytest.approx(plain.metrics["R@100"])  # the same 100, reordered
    for qid in list(got.run)[:3]:
        query = load_query(data_dir, qid)
        assert [h.doc_id for h in got.run[qid][:10]] == [
            h.doc_id for h in search_one([dense], query, 10, mmr=0.5)
        ]
        assert len(got.run[qid]) == 100


def load_query(data_dir: Path, qid: str) -> str:
    lines = (data_dir / "cranfield-beir" / "queries.jsonl").read_text().splitlines()
    return next(row["text"] for row in map(json.loads, lines) if row["_id"] == qid)


def test_cli_rag_echoes_mmr(cranfield_bm25: Path, bm25: Index) -> None:
    args = ["rag", str(cranfield_bm25), QUERIES[2], "-k", "4", "--generator", "none", "--json"]
    shown = json.loads(run_cli(*args, "--mmr", "0.5", "--mmr-depth", "20").stdout)
    assert shown["mmr"] == {"weight": 0.5, "depth": 20, "encoder": "minilm"}
    want = search_one([bm25], QUERIES[2], 4, mmr=Mmr(0.5, depth=20))
    assert [s["doc_id"] for s in shown["sources"]] == [h.doc_id for h in want]


def test_a_minilm_index_lends_its_stored_vectors(dense: Index, bm25: Index, monkeypatch) -> None:
    """MiniLM flat holds the very vectors MMR would encode: they are read, not encoded again, and
    the picks equal the encoded path's; BM25 holds none, so its hits are encoded."""
    for query in QUERIES:
        rows = [dense.search(query, 40, with_text=True)]
        encoded = diversify(Mmr(0.5), rows, 10)[0]
        stored = diversify(Mmr(0.5), rows, 10, [bm25, dense])[0]
        assert [h.doc_id for h in stored] == [h.doc_id for h in encoded]
        assert [h.score for h in stored] == pytest.approx([h.score for h in encoded], abs=1e-4)
    assert bm25.stored_vectors(["1"]) is None and dense.stored_vectors(["1", "no such id"]) is None

    def no_encoding(self, texts):
        raise AssertionError("encoded although the index holds the vectors")

    monkeypatch.setattr("tessera.retrieval.rerank.encoder.EncoderReranker.doc_vectors", no_encoding)
    search_one([bm25, dense], QUERIES[0], 10, mmr=0.5)
    search_run([dense], {"q": QUERIES[1]}, k=10, show_progress=False, mmr=0.5)
    with pytest.raises(AssertionError, match="encoded although"):
        search_one([bm25], QUERIES[0], 10, mmr=0.5)


def test_eval_rag_measures_the_diversified_context(bm25: Index, data_dir: Path) -> None:
    from tessera.data.datasets import load_eval_dataset
    from tessera.rag.evaluate import evaluate_rag

    data = load_eval_dataset(data_dir / "cranfield-beir")
    got = evaluate_rag(
        bm25, data, k=5, compress="none", generator="none", max_queries=4, show_progress=False, mmr=0.5
    )
    assert got["mmr"] == {"weight": 0.5, "depth": None, "encoder": "minilm"}
    changed = 0
    for row in got["queries"]:
        picked = search_one([bm25], data.queries[row["query_id"]], 5, mmr=0.5)
        relevant = sum(data.qrels[row["query_id"]].get(h.doc_id, 0) > 0 for h in picked)
        assert row["relevant_in_top_k"] == relevant
        changed += [h.doc_id for h in picked] != [
            h.doc_id for h in bm25.search(data.queries[row["query_id"]], 5)
        ]
    assert changed  # MMR chose other contexts than the plain top 5
