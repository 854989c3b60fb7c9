"""`tessera eval-runs`: TREC runs written by `tessera search` (standing in for any system's)
scored on Cranfield's judged test queries: each run's scores are `tessera eval`'s for its index,
the fusion is `tessera eval A B`'s, the first run is the significance baseline, and runs that
cannot be scored are refused naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tessera.errors import TesseraError, TesseraWarning
from tessera.eval.compare import compare_runs, run_names
from tessera.eval.evaluate import evaluate
from tessera.eval.runs import read_trec
from tests.conftest import run_cli

METRICS = ["nDCG@10", "R@100", "NumRelRet"]  # the last a count: summed, as eval sums it


@pytest.fixture(scope="module")
def runs(cranfield_bm25: Path, cranfield_dense: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("runs")
    paths = [folder / "bm25.trec", folder / "minilm.trec"]
    for index, path in zip((cranfield_bm25, cranfield_dense), paths, strict=True):
        run_cli("search", str(index), "--queries", "cranfield-beir", "--run", str(path))
    return paths


def test_each_run_scores_as_eval_scores_its_index(runs, cranfield_bm25, cranfield_dense, tmp_path):
    fused_path, report = tmp_path / "fused.trec", tmp_path / "compare.json"
    result = compare_runs(
        runs, "cranfield-beir", metrics=METRICS, fusion="rrf", run_path=fused_path, json_path=report
    )
    assert [r.name for r in result.runs] == ["bm25", "minilm", "rrf(bm25+minilm)"]
    assert result.queries == 114 and all(r.answered == 114 for r in result.runs)
    systems = ([cranfield_bm25], [cranfield_dense], [cranfield_bm25, cranfield_dense])
    for row, indexes in zip(result.runs, systems, strict=True):
        expected = evaluate(indexes, "cranfield-beir", metrics=METRICS, show_progress=False).metrics
        assert row.means == pytest.approx(expected, abs=1e-4)
        assert all(0 < row.errors[m] < 0.05 for m in METRICS[:2]) and row.means["NumRelRet"] > 114
    assert read_trec(fused_path).keys() == read_trec(runs[0]).keys()
    saved = json.loads(report.read_text())
    assert saved["baseline"] == "bm25" and set(saved["runs"]) == {r.name for r in result.runs}
    tested = saved["significance"]["nDCG@10"]["t-test"]
    assert set(tested) == {"minilm", "rrf(bm25+minilm)"}
    fused = tested["rrf(bm25+minilm)"]
    versus = saved["runs"]["rrf(bm25+minilm)"]["against_baseline"]["nDCG@10"]
    assert sum(versus.values()) == 114 and versus["better"] > versus["worse"]
    assert saved["runs"]["bm25"]["per_query"]["nDCG@10"] == result.runs[0].per_query["nDCG@10"]
    assert fused["delta"] == pytest.approx(result.runs[2].means["nDCG@10"] - result.runs[0].means["nDCG@10"])
    assert fused["p_holm"] >= fused["p"] and fused["significant"] == (fused["p_holm"] <= 0.05)


def test_a_run_missing_queries_scores_them_zero_and_says_so(runs, tmp_path):
    lines = runs[0].read_text().splitlines(keepends=True)
    first = lines[0].split()[0]
    partial = tmp_path / "partial.trec"
    partial.write_text("".join(line for line in lines if line.split()[0] != first))
    with pytest.warns(UserWarning, match="has no hit for 1 of 114 judged queries"):
        result = compare_runs([runs[0], partial], "cranfield-beir", metrics=METRICS)
    full, cut = result.runs
    assert cut.answered == 113 and cut.per_query["nDCG@10"][first] == 0
    assert cut.means["nDCG@10"] == pytest.approx(
        full.means["nDCG@10"] - full.per_query["nDCG@10"][first] / 114
    )


def test_runs_that_cannot_be_scored_are_refused(runs, tmp_path):
    other = tmp_path / "other.trec"
    other.write_text("Q-1 Q0 d1 1 1.0 x\n")
    with pytest.raises(TesseraError, match="answers none of cranfield-beir/test's judged queries") as wrong:
        compare_runs([other], "cranfield-beir")
    assert wrong.value.file == str(other)
    for arguments, message in [
        ({"paths": []}, "at least one run file"),
        ({"fusion": "rrf", "paths": runs[:1]}, "fusion needs at least two runs"),
        ({"run_path": tmp_path / "x.trec"}, "--run and --weights belong to a fusion"),
        ({"fusion": "max"}, "unknown fusion 'max'"),
        ({"metrics": ["nDCG@ten"]}, "unknown ir_measures metric"),
        ({"alpha": 1.5}, "alpha must be between 0 and 1"),
    ]:
        with pytest.raises(TesseraError, match=message):
            compare_runs(**{"paths": runs, "dataset": "cranfield-beir", **arguments})


def test_run_names_are_file_names_unless_they_clash(tmp_path):
    assert run_names([Path("a/bm25.trec"), Path("b/dense.txt")]) == ["bm25", "dense"]
    assert run_names([Path("a/run.trec"), Path("b/run.trec")]) == ["a/run.trec", "b/run.trec"]


def test_eval_runs_prints_the_table_and_refuses_bad_files_in_one_line(runs, tmp_path):
    shown = run_cli("eval-runs", *map(str, runs), "--dataset", "cranfield-beir", "--metrics", "nDCG@10")
    rows = [line for line in shown.stdout.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == ["bm25", "minilm"]  # the header row is ┃
    assert rows[0].split("│")[3].strip() == "114/114" and "±" in rows[1].split("│")[2]
    better, tied, worse = map(int, rows[1].split("│")[4].split("/"))
    assert better + tied + worse == 114 and rows[0].split("│")[4].strip() == ""
    broken = tmp_path / "broken.trec"
    broken.write_text("1 Q0 184 1 x tessera\n")
    bad = run_cli("eval-runs", str(broken), "--dataset", "cranfield-beir", check=False)
    assert (
        bad.returncode == 1 and f"{broken}:1, field 'score'" in bad.stderr and "Traceback" not in bad.stderr
    )


def test_one_run_given_alone_or_twice(runs) -> None:
    """A str was read letter by letter ("b: no such run file"); one run twice compared with
    itself showed two rows of one name and no test."""
    alone = compare_runs(str(runs[0]), "cranfield-beir", metrics="nDCG@10")
    assert [r.name for r in alone.runs] == ["bm25"] and alone.metrics == ["nDCG@10"]
    with pytest.raises(TesseraError, match=r"is given twice \(also as runs\[0\]\)"):
        compare_runs([runs[0], runs[0].parent / ".." / runs[0].parent.name / runs[0].name], "cranfield-beir")


def test_a_qrels_file_scores_runs_as_its_dataset_does(runs, data_dir: Path, tmp_path: Path) -> None:
    """trec_eval's users hold a qrels file, not a BEIR folder with every query's text."""
    beir = (data_dir / "cranfield-beir" / "qrels" / "test.tsv").read_text().splitlines()[1:]
    trec = tmp_path / "qrels.test.txt"
    trec.write_text("".join(f"{q} 0 {d} {g}\n" for q, d, g in (line.split("\t") for line in beir)))
    by_file = compare_runs(runs, trec, metrics=METRICS)
    by_dataset = compare_runs(runs, "cranfield-beir", metrics=METRICS)
    assert by_file.queries == by_dataset.queries == 114
    assert [r.means for r in by_file.runs] == [r.means for r in by_dataset.runs]
    shown = run_cli("eval-runs", *map(str, runs), "--dataset", str(trec), "--metrics", "nDCG@10")
    assert "114 judged queries" in shown.stdout
    trec.write_text("1 0 184 1\n1 184\n")
    bad = run_cli("eval-runs", str(runs[0]), "--dataset", str(trec), check=False)
    assert bad.returncode == 1 and "qrels.test.txt:2" in bad.stderr and "got 2 columns" in bad.stderr


def test_a_fusion_shallower_than_a_cutoff_warns(runs) -> None:
    """`--depth 20` fuses 20 hits a run, so R@100 of the fusion counts 20 (as `tessera eval` warns)."""
    with pytest.warns(TesseraWarning, match="metric 'R@100' counts 100 hits, but at most 20 are retrieved"):
        compare_runs(runs, "cranfield-beir", metrics=["R@100"], fusion="rrf", depth=20)
