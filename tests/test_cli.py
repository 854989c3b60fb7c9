from __future__ import annotations

import json
from pathlib import Path

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
