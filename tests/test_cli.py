from __future__ import annotations

import json
from pathlib import Path

import pytest

from tessera.cli import _expand_multi_value
from tests.conftest import run_cli


def test_index_search_eval_through_the_cli(
    cranfield_bm25: Path, cranfield_dense: Path, tmp_path: Path
) -> None:
    hits = json.loads(
        run_cli("search", str(cranfield_bm25), "boundary layer transition", "-k", "3", "--json").stdout
    )
    assert [h["rank"] for h in hits] == [1, 2, 3] and all(h["text"] for h in hits)

    result = run_cli(
        "eval",
        str(cranfield_bm25),
        str(cranfield_dense),
        "--dataset",
        "cranfield",
        "--metrics",
        "nDCG@10",
        "R@100",
        "--depth",
        "100",
        "--run",
        str(tmp_path / "run.trec"),
        "--json",
        str(tmp_path / "m.json"),
    )
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert list(metrics) == ["nDCG@10", "R@100"]
    assert 0.35 < metrics["nDCG@10"] < 0.40
    assert "rrf fusion" in result.stdout
    assert len((tmp_path / "run.trec").read_text().splitlines()) == 225 * 100


def test_cli_errors_are_one_line_and_non_zero(tmp_path: Path, data_dir: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_id": "a", "text": "x"}\n{"_id": "b"}\n')
    result = run_cli("index", str(bad), "-o", str(tmp_path / "idx"), "--encoder", "bm25", check=False)
    assert result.returncode == 1
    assert f"{bad}:2, field 'text': missing" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("idx*"))

    result = run_cli("eval", str(tmp_path), "--dataset", "cranfield", check=False)
    assert result.returncode == 1 and "manifest.json is missing" in result.stderr

    result = run_cli("eval", str(tmp_path), "--dataset", "nosuch-dataset", check=False)
    assert result.returncode == 1 and "unknown dataset id 'nosuch-dataset'" in result.stderr

    result = run_cli("--debug", "search", str(tmp_path / "none"), "q", check=False)
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_search_refuses_k_below_one(cranfield_bm25: Path, cranfield_dense: Path) -> None:
    for index in (cranfield_bm25, cranfield_dense):
        result = run_cli("search", str(index), "boundary layer", "-k", "0", check=False)
        assert result.returncode == 1 and "field 'k': k must be at least 1, got 0" in result.stderr
        assert "Traceback" not in result.stderr


def test_quickstart_runs_offline(tmp_path: Path) -> None:
    result = run_cli("quickstart", "immune memory after vaccination", "-k", "2")
    assert "Vaccination" in result.stdout or "Immune memory" in result.stdout


def test_metrics_option_takes_several_values() -> None:
    argv = ["eval", "a", "b", "--metrics", "nDCG@10", "R@100", "--dataset", "x", "--metrics", "AP"]
    assert _expand_multi_value(argv) == [
        "eval",
        "a",
        "b",
        "--metrics",
        "nDCG@10",
        "--metrics",
        "R@100",
        "--dataset",
        "x",
        "--metrics",
        "AP",
    ]


def test_search_fuses_indexes_as_hybrid_search(cranfield_bm25: Path, cranfield_dense: Path) -> None:
    from tessera.retrieval.fusion import hybrid_search
    from tessera.retrieval.index import Index

    query = "boundary layer transition"
    indexes = [Index.load(cranfield_dense), Index.load(cranfield_bm25)]
    for options, fusion, weights in [
        ([], "rrf", None),
        (["--fusion", "wsum", "--weights", "3,1"], "wsum", [3, 1]),
    ]:
        args = ("search", str(cranfield_dense), query, "--fuse", str(cranfield_bm25), "-k", "5", "--json")
        hits = json.loads(run_cli(*args, *options).stdout)
        expected = hybrid_search(indexes, [query], k=5, depth=100, fusion=fusion, weights=weights)[0]
        assert [(h["doc_id"], h["rank"]) for h in hits] == [(h.doc_id, h.rank) for h in expected]
        assert [h["score"] for h in hits] == pytest.approx([h.score for h in expected], abs=1e-6)
        assert all(h["text"] for h in hits)  # the first index's stored text

    for options, message in [
        (["--weights", "1,2"], "field 'fuse': fusion and weights need indexes to fuse with"),
        (["--fuse", str(cranfield_bm25), "--fusion", "wsum", "--weights", "1"], "1 weights for 2 runs"),
    ]:
        bad = run_cli("search", str(cranfield_dense), query, *options, check=False)
        assert bad.returncode == 1 and message in bad.stderr and "Traceback" not in bad.stderr
