"""`tessera eval-suite`: the classic suite over two small collections, end to end.

Two real collections (Cranfield and MEDLINE, their BEIR copies' test splits) sampled to 200
documents each keep this under a minute; the numbers must be the ones `evaluate` (what
`tessera eval` runs) gives on the suite's own indexes, the significance marks ranx's t-test and
scipy's permutation test, and a second run must rebuild and re-retrieve nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tessera.errors import TesseraError
from tessera.eval import suite as suite_module
from tessera.eval.evaluate import evaluate
from tessera.eval.report import render
from tessera.eval.suite import run_suite
from tessera.retrieval.diversify import Mmr
from tests.conftest import read_qrels, run_cli

SYSTEMS = ["bm25", "pq=minilm@PQ16x4", "minilm", "hybrid=rrf:bm25+minilm", "scores=wsum:bm25^1+minilm^3"]
DATASETS = {"cranfield-beir/test": "cranfield", "medline-beir/test": "medline"}
MAX_DOCS = 200


@pytest.fixture(scope="module")
def local_data(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding two of the classic collections; the other classic ones are absent."""
    local = tmp_path_factory.mktemp("data")
    for name in ("cranfield-beir", "medline-beir"):
        (local / name).symlink_to(data_dir / name)
    return local


@pytest.fixture(scope="module")
def suite_dir(local_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    local = local_data
    output = tmp_path_factory.mktemp("suite") / "report"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TESSERA_DATA_DIR", str(local))
        run_suite("classic", SYSTEMS, output, max_docs=MAX_DOCS, command="tessera eval-suite classic ...")
    return output


@pytest.fixture(scope="module")
def results(suite_dir: Path) -> dict:
    return json.loads((suite_dir / "results.json").read_text())


def test_report_files(suite_dir: Path, results: dict) -> None:
    report = (suite_dir / "report.md").read_text()
    for dataset in DATASETS:
        assert f"| {dataset} |" in report
        for system in ("bm25", "minilm", "hybrid"):
            assert (suite_dir / "runs" / dataset.replace("/", "_") / f"{system}.trec").stat().st_size > 0
    assert "SAMPLED" in report and f"sampled: {MAX_DOCS} of 1400 documents" in report
    assert "## Reproduce" in report and "tessera eval-suite classic" in report
    for plot in ("quality.png", "quality_vs_bytes.png", "quality_vs_latency.png"):
        assert (suite_dir / "plots" / plot).read_bytes().startswith(b"\x89PNG")
    assert results["metrics"] == ["nDCG@10", "R@100", "RR@10"]
    assert render(results, suite_dir) == report  # the report is a function of results.json alone
    assert list(results["systems"]) == ["bm25", "pq", "minilm", "hybrid", "scores"]
    for dataset in DATASETS:
        cost = results["efficiency"][dataset]["minilm"]
        assert cost["doc_count"] == MAX_DOCS
        assert cost["index_bytes"] / MAX_DOCS == pytest.approx(384 * 4, rel=0.1)  # float32 vectors
        assert cost["ms_per_query"] > 0 and cost["build_seconds"] > 0 and cost["vectors_from"] is None
        pq = results["efficiency"][dataset]["pq"]  # listed before minilm, built from its vectors
        assert pq["vectors_from"] == "minilm" and pq["index_bytes"] < cost["index_bytes"] / 10


def test_missing_datasets_are_rows(suite_dir: Path, results: dict) -> None:
    report = (suite_dir / "report.md").read_text()
    for dataset in ("glasgow/cisi", "glasgow/lisa", "glasgow/cacm", "vaswani"):
        assert "no local copy" in results["datasets"][dataset]["missing"]
        assert f"| {dataset} | – | – | not available: no local copy" in report
    assert set(results["results"]) == set(DATASETS)


def test_numbers_equal_tessera_eval(data_dir: Path, suite_dir: Path, results: dict) -> None:
    for dataset, collection in DATASETS.items():
        indexes = suite_dir / "indexes" / f"{collection}.max{MAX_DOCS}"
        folder = data_dir / f"{collection}-beir"
        metrics = results["metrics"]
        by_hand = {
            "bm25": evaluate([indexes / "bm25"], folder, metrics=metrics, show_progress=False),
            "minilm": evaluate([indexes / "minilm"], folder, metrics=metrics, show_progress=False),
            "hybrid": evaluate(
                [indexes / "bm25", indexes / "minilm"], folder, metrics=metrics, show_progress=False
            ),
            "scores": evaluate(
                [indexes / "bm25", indexes / "minilm"],
                folder,
                metrics=metrics,
                fusion="wsum",
                weights=[1, 3],
                show_progress=False,
            ),
        }
        for system, evaluation in by_hand.items():
            assert results["results"][dataset][system] == pytest.approx(evaluation.metrics, abs=1e-12), system
            per_query = results["per_query"][dataset][system]["nDCG@10"]
            assert len(per_query) == results["datasets"][dataset]["queries"]
            assert np.mean(list(per_query.values())) == pytest.approx(evaluation.metrics["nDCG@10"], abs=1e-9)


def test_significance_agrees_with_ranx_and_scipy(data_dir: Path, suite_dir: Path, results: dict) -> None:
    """The t-test is ranx's own; Fisher's test is checked against scipy's permutation test: exact
    where ours is exact (MEDLINE's 11 judged test queries in the sample), from 100,000 seeded draws
    where ours draws 1,000 (Cranfield's), so the check is deterministic. ranx's Fisher test draws in
    parallel threads and differs run to run: on two cores it once gave 0.007 where the exact p was
    0.031."""
    from ranx import Qrels, Run, compare
    from ranx import evaluate as ranx_evaluate
    from scipy.stats import permutation_test

    for dataset, collection in DATASETS.items():
        qrels = Qrels.from_dict(read_qrels(data_dir / f"{collection}-beir" / "qrels" / "test.tsv"))
        runs = []
        for system in ("bm25", "minilm"):
            run = Run.from_file(
                str(suite_dir / "runs" / dataset.replace("/", "_") / f"{system}.trec"), kind="trec"
            )
            run.name = system
            runs.append(run)
        report = compare(qrels, runs, ["ndcg@10"], stat_test="student")
        assert report.results["minilm"]["ndcg@10"] == pytest.approx(
            results["results"][dataset]["minilm"]["nDCG@10"], abs=1e-6
        )
        ours = results["significance"]["nDCG@10"]["t-test"][dataset]["minilm"]
        assert ours["p"] == pytest.approx(
            report.comparisons[("bm25", "minilm")]["ndcg@10"]["p_value"], abs=1e-9
        )
        assert ours["p"] <= ours["p_holm"] <= 1.0

        bm25, minilm = (ranx_evaluate(qrels, run, "ndcg@10", return_mean=False) for run in runs)
        exact = len(bm25) <= 16
        reference = permutation_test(
            (minilm, bm25),
            lambda x, y, axis: np.mean(x - y, axis=axis),
            permutation_type="samples",
            vectorized=True,
            n_resamples=np.inf if exact else 100_000,
            rng=np.random.default_rng(0),
        ).pvalue
        ours = results["significance"]["nDCG@10"]["fisher"][dataset]["minilm"]
        noise = 1e-9 if exact else 4 * (reference * (1 - reference) / 1000) ** 0.5 + 1 / 1001
        assert ours["p"] == pytest.approx(reference, abs=noise), dataset
        assert ours["p"] <= ours["p_holm"] <= 1.0
    assert len(bm25) <= 16  # MEDLINE's judged test queries in the sample: the exact branch was checked


def test_rerun_builds_and_retrieves_nothing(
    suite_dir: Path, results: dict, local_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs last in this module: it rewrites one run file to show that checksums decide."""
    monkeypatch.setenv("TESSERA_DATA_DIR", str(local_data))

    def refuse(*args, **kwargs):
        raise AssertionError("a finished suite was rebuilt or re-retrieved")

    monkeypatch.setattr(suite_module, "build_index", refuse)
    monkeypatch.setattr(suite_module, "reindex", refuse)
    retrieve = suite_module.retrieve
    monkeypatch.setattr(suite_module, "retrieve", refuse)
    again = run_suite(
        "classic", SYSTEMS, suite_dir, max_docs=MAX_DOCS, command="tessera eval-suite classic ..."
    )
    assert again["results"] == results["results"]
    assert again["significance"] == results["significance"]

    # A run file that no longer matches its checksum is retrieved again (and only that pair).
    calls = []
    monkeypatch.setattr(suite_module, "retrieve", lambda *a, **k: calls.append(a) or retrieve(*a, **k))
    run_file = suite_dir / "runs" / "medline-beir_test" / "minilm.trec"
    run_file.write_text(run_file.read_text().replace(" Q0 ", " Q0  ", 1))
    fixed = run_suite("classic", SYSTEMS, suite_dir, max_docs=MAX_DOCS)
    assert len(calls) == 1 and fixed["results"] == results["results"]


def test_a_system_with_search_parameters_searches_its_plain_siblings_index(
    data_dir: Path, tmp_path: Path
) -> None:
    folder = data_dir / "medline-beir"
    systems = ["bm25", "rocchio=bm25?prf=rocchio"]
    results = run_suite(f"folders:{folder}", systems, tmp_path, metrics=["nDCG@10"], plots=False)
    assert [path.name for path in (tmp_path / "indexes" / "medline-beir").iterdir() if path.is_dir()] == [
        "bm25"
    ]
    scores = results["results"]["medline-beir/test"]
    bm25 = tmp_path / "indexes" / "medline-beir" / "bm25"
    expected = evaluate(
        [bm25], folder, "test", metrics=["nDCG@10"], show_progress=False, search_params={"prf": "rocchio"}
    )
    assert scores["rocchio"]["nDCG@10"] == pytest.approx(expected.metrics["nDCG@10"], abs=1e-9)
    assert scores["rocchio"]["nDCG@10"] != pytest.approx(scores["bm25"]["nDCG@10"], abs=1e-6)


def test_reranked_systems_equal_evaluate_and_build_no_index(data_dir: Path, tmp_path: Path) -> None:
    folder = data_dir / "medline-beir"
    systems = [
        "bm25",
        "minilm",
        "bm25mini=bm25?rerank=minilm&rerank_depth=30",
        "h=rrf:bm25+minilm?rerank=minilm",
        "div=minilm?mmr=0.5&mmr_depth=30",
        "hd=rrf:bm25+minilm?rerank=minilm&mmr=0.7",
    ]
    results = run_suite(
        f"folders:{folder}", systems, tmp_path, metrics=["nDCG@10"], plots=False, max_docs=150
    )
    built = sorted(p.name for p in (tmp_path / "indexes" / "medline-beir.max150").iterdir() if p.is_dir())
    assert built == ["bm25", "minilm"]
    scores = results["results"]["medline-beir/test"]
    root = tmp_path / "indexes" / "medline-beir.max150"
    alone = evaluate(
        [root / "bm25"], folder, metrics=["nDCG@10"], show_progress=False, rerank="minilm", rerank_depth=30
    )
    fused = evaluate(
        [root / "bm25", root / "minilm"], folder, metrics=["nDCG@10"], show_progress=False, rerank="minilm"
    )
    assert scores["bm25mini"]["nDCG@10"] == pytest.approx(alone.metrics["nDCG@10"], abs=1e-9)
    assert scores["h"]["nDCG@10"] == pytest.approx(fused.metrics["nDCG@10"], abs=1e-9)
    assert scores["bm25mini"]["nDCG@10"] != pytest.approx(scores["bm25"]["nDCG@10"], abs=1e-6)
    diverse = evaluate([root / "minilm"], folder, metrics=["nDCG@10"], show_progress=False, mmr=Mmr(0.5, 30))
    both = evaluate([root / "bm25", root / "minilm"], folder, metrics=["nDCG@10"], show_progress=False,
                    rerank="minilm", mmr=0.7)  # fmt: skip
    assert scores["div"]["nDCG@10"] == pytest.approx(diverse.metrics["nDCG@10"], abs=1e-9)
    assert scores["hd"]["nDCG@10"] == pytest.approx(both.metrics["nDCG@10"], abs=1e-9)
    assert scores["div"]["nDCG@10"] != pytest.approx(scores["minilm"]["nDCG@10"], abs=1e-6)


def test_eval_suite_through_the_cli(cranfield_bm25: Path, data_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "report"
    result = run_cli(
        "eval-suite",
        f"folders:{data_dir / 'medline-beir'},{tmp_path / 'absent'}",
        "--system",
        "bm25",
        "--system",
        f"elsewhere=index:{tmp_path}/{{collection}}/bm25",
        "--metrics",
        "nDCG@10",
        "AP",
        "-o",
        str(output),
    )
    assert "medline-beir/test" in result.stdout and "not available" in result.stdout
    results = json.loads((output / "results.json").read_text())
    assert results["metrics"] == ["nDCG@10", "AP"]
    assert 0.5 < results["results"]["medline-beir/test"]["bm25"]["nDCG@10"] < 0.8
    assert (
        "no index for collection 'medline-beir'" in results["unavailable"]["medline-beir/test"]["elsewhere"]
    )
    report = (output / "report.md").read_text()
    assert "## Pairs not run" in report and "## AP" in report

    bad = run_cli(
        "eval-suite",
        "classic",
        "--system",
        "bm25",
        "--system",
        "h=rrf:bm25+nosuch",
        "-o",
        str(output),
        check=False,
    )
    assert bad.returncode == 1 and "fuses 'nosuch', which no --system defines" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_bad_suite_options_are_refused_before_any_work(tmp_path: Path) -> None:
    for options, field in [
        ({"alpha": 1.0}, "alpha"),
        ({"alpha": -0.1}, "alpha"),
        ({"max_docs": 0}, "max_docs"),
    ]:
        with pytest.raises(TesseraError) as info:
            run_suite("folders:/nowhere", ["bm25"], tmp_path / "out", **options)
        assert info.value.field == field
    assert not (tmp_path / "out").exists()
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "corpus.jsonl").write_text("")
    (tmp_path / "data" / "qrels").mkdir()
    for output, says in [
        ("notes.txt", "is a file, not a folder"),
        ("data", "is a dataset's folder"),
        ("data/qrels", "is inside a dataset's folder"),
    ]:
        with pytest.raises(TesseraError, match=says):
            run_suite("folders:/nowhere", ["bm25"], tmp_path / output)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["corpus.jsonl", "qrels"]


def _small_beir(folder: Path, data_dir: Path, query_ids: tuple[str, ...]) -> Path:
    """Cranfield's first 60 documents and three of its queries, judged on them, as a BEIR folder."""
    (folder / "qrels").mkdir(parents=True)
    lines = (data_dir / "cranfield-beir" / "corpus.jsonl").read_text().splitlines()[:60]
    (folder / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    texts = ["boundary layer on a flat plate", "heat transfer in hypersonic flow", "wing flutter"]
    queries = [{"_id": qid, "text": text} for qid, text in zip(query_ids, texts, strict=True)]
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    judged = [
        (query_ids[0], "1", 2),
        (query_ids[0], "9", 1),
        (query_ids[1], "12", 1),
        (query_ids[2], "30", 1),
    ]
    rows = "".join(f"{q}\t{d}\t{g}\n" for q, d, g in judged)
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    return folder


def test_edited_judgments_are_scored_again_and_new_metrics_rescore_saved_runs(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pair key held the index and the run, not the judgments: an edited qrels file kept its
    old numbers ("saved"). A metric added rescored by retrieving everything again."""
    small = _small_beir(tmp_path / "small", data_dir, ("1", "2", "3"))
    odd = _small_beir(tmp_path / "odd", data_dir, ("q 1", "q2", "q3"))  # a TREC run cannot hold 'q 1'
    output = tmp_path / "report"
    suite = f"folders:{small},{odd}"
    first = run_suite(suite, ["bm25"], output, metrics=["nDCG@10"])
    assert (
        set(first["results"]) == {"small/test"} and "whitespace" in first["unavailable"]["odd/test"]["bm25"]
    )

    qrels = small / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text().replace("1\t1\t2", "1\t1\t0"))
    edited = run_suite(suite, ["bm25"], output, metrics=["nDCG@10"])
    index = output / "indexes" / "small" / "bm25"
    expected = evaluate([index], small, metrics=["nDCG@10", "P@1"], depth=1000, show_progress=False)
    assert edited["results"]["small/test"]["bm25"]["nDCG@10"] == pytest.approx(expected.metrics["nDCG@10"])
    assert edited["results"] != first["results"]

    retrieved, retrieve = [], suite_module.retrieve
    monkeypatch.setattr(
        suite_module,
        "retrieve",
        lambda index, data, *a, **k: retrieved.append(data.name) or retrieve(index, data, *a, **k),
    )
    more = run_suite(suite, ["bm25"], output, metrics=["nDCG@10", "P@1"])
    assert more["results"]["small/test"]["bm25"] == pytest.approx(expected.metrics)
    assert retrieved == ["odd/test"]  # the pair that failed, not the one whose run was saved


def test_stale_plots_go_when_a_report_has_none(suite_dir: Path, results: dict, tmp_path: Path) -> None:
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "quality.png").write_bytes(b"an earlier report's")
    ghost = {**results, "systems": {**results["systems"], "ghost": {"spec": "bm25", "kind": "built"}}}
    assert "None: no dataset has a result of every system." in render(ghost, tmp_path)
    assert not (tmp_path / "plots" / "quality.png").exists()


def test_a_suite_that_ran_nothing_fails(tmp_path: Path) -> None:
    bad = run_cli(
        "eval-suite",
        f"folders:{tmp_path / 'nowhere'}",
        "--system",
        "bm25",
        "-o",
        str(tmp_path / "r"),
        check=False,
    )
    assert bad.returncode == 1 and "no (dataset, system) pair of the suite could be run here" in bad.stderr
    assert (tmp_path / "r" / "report.md").is_file()


def test_a_sampled_runs_plots_say_so(results: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """report.md said SAMPLED; its plots, shown on their own, did not."""
    from tessera.eval import plots

    titles: list[str] = []
    monkeypatch.setattr(plots, "_save", lambda figure, path: titles.append(figure.axes[0].get_title()))
    render(results, tmp_path)
    assert len(titles) == 3
    assert all(title.endswith(f"\nSAMPLED: at most {MAX_DOCS} documents a corpus") for title in titles)
