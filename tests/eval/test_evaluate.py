from __future__ import annotations

import json
import re
from pathlib import Path

import ir_measures
import pytest

from tessera.data.datasets import load_eval_dataset
from tessera.data.irds import load
from tessera.errors import TesseraError, TesseraWarning
from tessera.eval.evaluate import evaluate, per_query_scores, score
from tessera.eval.runs import read_trec
from tessera.indexing.jvm import pyserini
from tessera.models.bm25 import TITLE_WEIGHT
from tests.conftest import run_cli

# Measured here with pyserini, faiss and sentence-transformers used directly on ir_datasets'
# Cranfield (all 225 queries, its grades, title + text, depth 1000); Tessera must reproduce them.
# BM25 is pyserini's multi-field search with Tessera's default weights (contents 1, title 0.25);
# its one-field search (title=0) gave nDCG@10 0.322 and R@100 0.722, and the hybrid 0.376 / 0.790.
REFERENCE = {
    "bm25": {"nDCG@10": 0.340, "R@100": 0.736},
    "minilm": {"nDCG@10": 0.354, "R@100": 0.772},
    "rrf": {"nDCG@10": 0.388, "R@100": 0.789},
}


@pytest.fixture(scope="module")
def cranfield_runs(cranfield_bm25: Path, cranfield_dense: Path) -> dict:
    return {
        "bm25": evaluate([cranfield_bm25], "cranfield", show_progress=False),
        "minilm": evaluate([cranfield_dense], "cranfield", show_progress=False),
        "rrf": evaluate([cranfield_bm25, cranfield_dense], "cranfield", show_progress=False),
    }


@pytest.mark.parametrize("system", ["bm25", "minilm", "rrf"])
def test_reference_figures_are_reproduced(cranfield_runs: dict, system: str) -> None:
    result = cranfield_runs[system]
    assert result.dataset == "cranfield"
    for metric, expected in REFERENCE[system].items():
        assert result.metrics[metric] == pytest.approx(expected, abs=0.005), metric


@pytest.mark.parametrize("title", [0.0, TITLE_WEIGHT])
def test_bm25_equals_pyserini_used_directly(cranfield_bm25: Path, tmp_path: Path, title: float) -> None:
    """Tessera's BM25 ranks and scores as pyserini does on its own index of the same documents:
    its one-field search (title=0) and its multi-field search with Tessera's default weights."""
    pyserini()
    from jnius import autoclass
    from pyserini.search.lucene import LuceneSearcher

    docs = tmp_path / "docs"
    docs.mkdir()
    with (docs / "cranfield.jsonl").open("w") as handle:
        for doc in load("cranfield").docs_iter():
            line = {"id": doc.doc_id, "contents": doc.default_text(), "title": doc.title}
            handle.write(json.dumps(line) + "\n")
    autoclass("io.anserini.index.IndexCollection").main(
        [
            "-collection",
            "JsonCollection",
            "-input",
            str(docs),
            "-index",
            str(tmp_path / "lucene"),
            "-generator",
            "DefaultLuceneDocumentGenerator",
            "-threads",
            "1",
            "-fields",
            "title",
        ]
    )
    searcher = LuceneSearcher(str(tmp_path / "lucene"))
    searcher.set_bm25(0.9, 0.4)
    dataset = load_eval_dataset("cranfield")
    qids = list(dataset.queries)
    fields = {"contents": 1.0, "title": title} if title else {}
    direct = searcher.batch_search([dataset.queries[q] for q in qids], qids, k=1000, threads=1, fields=fields)

    tessera = evaluate([cranfield_bm25], "cranfield", show_progress=False, search_params={"title": title})
    for qid in qids:
        assert [(h.docid, round(h.score, 4)) for h in direct[qid]] == [
            (h.doc_id, round(h.score, 4)) for h in tessera.run[qid]
        ], qid
    direct_scores = {q: {h.docid: h.score for h in hits} for q, hits in direct.items()}
    ndcg = ir_measures.calc_aggregate([ir_measures.nDCG @ 10], dataset.qrels, direct_scores)
    assert round(ndcg[ir_measures.nDCG @ 10], 4) == round(tessera.metrics["nDCG@10"], 4)
    assert round(tessera.metrics["nDCG@10"], 3) == (0.322 if title == 0 else REFERENCE["bm25"]["nDCG@10"])


def test_hybrid_beats_both_inputs_on_cranfield_test(
    cranfield_bm25: Path, cranfield_dense: Path, data_dir: Path, tmp_path: Path
) -> None:
    result = evaluate(
        [cranfield_bm25, cranfield_dense],
        data_dir / "cranfield-beir",
        split="test",
        run_path=tmp_path / "run.trec",
        json_path=tmp_path / "m.json",
        show_progress=False,
    )
    assert result.dataset == "cranfield-beir/test"
    for metric in ("nDCG@10", "R@100"):
        best_input = max(values[metric] for values in result.inputs.values())
        assert result.metrics[metric] >= best_input, metric
    written = json.loads((tmp_path / "m.json").read_text())
    assert set(written) == {"nDCG@10", "R@100", "RR@10", "AP"}
    assert written["nDCG@10"] == pytest.approx(result.metrics["nDCG@10"])
    run = read_trec(tmp_path / "run.trec")
    assert set(run) == set(result.run) and len(run) == 114
    assert all(len(hits) <= 1000 for hits in run.values())
    # The run file alone reproduces the metrics (6-decimal scores keep the order).
    dataset = load_eval_dataset(data_dir / "cranfield-beir", split="test")
    assert score(run, dataset)["nDCG@10"] == pytest.approx(result.metrics["nDCG@10"], abs=1e-6)


def test_one_index_and_one_metric_given_alone(cranfield_bm25: Path) -> None:
    """A str path was opened letter by letter ('/' is not an index), a str metric as 'n', 'D', ..."""
    alone = evaluate(str(cranfield_bm25), "cranfield", metrics="nDCG@10", show_progress=False)
    listed = evaluate([cranfield_bm25], "cranfield", metrics=["nDCG@10"], show_progress=False)
    assert alone.metrics == listed.metrics and set(alone.metrics) == {"nDCG@10"}


def test_unknown_metric_and_fusion(cranfield_bm25: Path) -> None:
    with pytest.raises(TesseraError, match="unknown ir_measures metric 'nDCG@x'"):
        evaluate([cranfield_bm25], "cranfield", metrics=["nDCG@x"], show_progress=False)
    whole = "the cutoff must be a whole number >= 1"
    for bad, message in [  # trec_eval would abort the whole process; ir_measures asserts late
        ("nDCG@0", whole),
        ("P@0", whole),
        ("nDCG@10.5", whole),
        ("R@1e3", "invalid param cutoff=1000.0"),
    ]:
        with pytest.raises(TesseraError, match=re.escape(f"metric '{bad}': {message}")):
            evaluate([cranfield_bm25], "cranfield", metrics=[bad], show_progress=False)
    with pytest.raises(TesseraError, match="unknown fusion 'comb'"):
        evaluate([cranfield_bm25], "cranfield", fusion="comb", show_progress=False)


def test_eval_cli_refuses_weights_that_do_not_fit(cranfield_bm25: Path, cranfield_dense: Path) -> None:
    """Checked before any query is run: one weight for two indexes, weights for rrf, non-numbers."""
    indexes = [str(cranfield_bm25), str(cranfield_dense)]
    for options, message in [
        (["--fusion", "wsum", "--weights", "1"], "1 weights for 2 runs"),
        (["--weights", "1,2"], "fusion 'rrf' takes no weights"),
        (["--fusion", "wsum", "--weights", "1,a"], "expected numbers separated by commas, got '1,a'"),
    ]:
        bad = run_cli("eval", *indexes, "--dataset", "cranfield", *options, check=False)
        assert bad.returncode == 1 and message in bad.stderr and "Traceback" not in bad.stderr


def test_metrics_are_keyed_as_spelled_even_where_ir_measures_renames_them() -> None:
    from tessera.data.datasets import EvalDataset
    from tessera.eval.evaluate import per_query_scores
    from tessera.retrieval.hits import Hit

    data = EvalDataset("tiny", {"q1": "wing", "q2": "heat"}, {"q1": {"d1": 2, "d4": 1}, "q2": {"d2": 1}})
    run = {"q1": [Hit("d1", 2.0, 1), Hit("d3", 1.0, 2)], "q2": [Hit("d3", 1.0, 1), Hit("d2", 0.5, 2)]}
    spelled = [
        "P@1",
        "P(rel=1)@1",
        "RR(rel=1)@10",
        "NumRelRet",
    ]  # ir_measures: P@1, P@1, RR@10, NumRet(rel=1)
    assert score(run, data, spelled) == {
        "P@1": 0.5,
        "P(rel=1)@1": 0.5,
        "RR(rel=1)@10": 0.75,
        "NumRelRet": 2.0,
    }
    per_query = per_query_scores(run, data, spelled)
    assert per_query["P@1"] == per_query["P(rel=1)@1"] == {"q1": 1.0, "q2": 0.0}
    assert per_query["RR(rel=1)@10"] == {"q1": 1.0, "q2": 0.5}


def test_every_provider_reads_tied_scores_in_trec_eval_order() -> None:
    """ir_measures computes RR through pytrec_eval but RR@10 through another provider, which broke
    ties its own way: on a run of equal scores the two disagreed (1.0 against 0.75)."""
    from tessera.data.datasets import EvalDataset
    from tessera.retrieval.hits import Hit

    data = EvalDataset("tied", {"q1": "a", "q2": "b"}, {"q1": {"d9": 1}, "q2": {"d1": 1}})
    tied = {q: [Hit(d, 1.0, r) for r, d in enumerate(("d1", "d5", "d9"), 1)] for q in ("q1", "q2")}
    # trec_eval orders ties by document id, highest first: d9, d5, d1
    assert score(tied, data, ["RR", "RR@10", "P@1"]) == {"RR": 2 / 3, "RR@10": 2 / 3, "P@1": 0.5}


def test_metrics_no_installed_evaluator_computes_are_refused_before_retrieval() -> None:
    from tessera.data.datasets import EvalDataset
    from tessera.eval.evaluate import parse_metrics
    from tessera.retrieval.hits import Hit

    with pytest.raises(TesseraError, match="'alpha_nDCG@10': needs ir_measures' pyndeval provider"):
        parse_metrics(["nDCG@10", "alpha_nDCG@10"])
    with pytest.raises(TesseraError, match="no evaluator has it"):
        parse_metrics(["nDCG(dcg='exp-log2',judged_only=True)@10"])
    with pytest.raises(TesseraError, match="at least one metric"):
        parse_metrics([])
    # gdeval (ERR@k) reads numeric query ids only; ids are numbered for it, and mapped back.
    data = EvalDataset("ids", {"q-a": "a", "q-b": "b"}, {"q-a": {"d1": 2}, "q-b": {"d2": 1}})
    run = {"q-a": [Hit("d1", 2.0, 1)], "q-b": [Hit("d1", 2.0, 1), Hit("d2", 1.0, 2)]}
    # gdeval's ERR: a grade g stops the reader with (2^g - 1) / 16; rank r counts 1 / r of it
    expected = {"q-a": 3 / 16, "q-b": (1 / 2) * (1 / 16)}
    assert per_query_scores(run, data, ["ERR@10"])["ERR@10"] == pytest.approx(expected)


def test_metric_options_split_outside_brackets_only() -> None:
    from tessera.cli.app import metric_names

    given = ["nDCG@10,R@100", "nDCG(gains={0:0,1:1,2:3})@10 AP", "P(rel=2)@5"]
    assert metric_names(given) == ["nDCG@10", "R@100", "nDCG(gains={0:0,1:1,2:3})@10", "AP", "P(rel=2)@5"]


def test_an_index_given_twice_and_a_depth_below_a_cutoff(cranfield_bm25: Path) -> None:
    with pytest.raises(TesseraError, match=r"is given twice \(also as indexes\[0\]\)"):
        evaluate([cranfield_bm25, str(cranfield_bm25) + "/"], "cranfield", show_progress=False)
    with pytest.warns(TesseraWarning, match="metric 'R@100' counts 100 hits, but at most 20 are retrieved"):
        evaluate([cranfield_bm25], "cranfield", metrics=["nDCG@10", "R@100"], depth=20, show_progress=False)
