"""How the command line reports what goes wrong: one line and a non-zero exit, a full disk in
plain words, a benchmark's bad count as a usage error, Ctrl-C with how to resume."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tessera.cli import at_least
from tests.conftest import run_cli


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


def test_a_full_disk_is_one_line_not_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """faiss and SQLite say "no space" in their own exception types, not OSError."""
    import sqlite3

    import tessera.indexing.builder

    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"_id": "a", "text": "wing"}\n')
    for error in (
        RuntimeError(
            "Error in faiss::write_index: write error in /x/vectors.faiss: 10 != 20 (No space left on device)"
        ),
        sqlite3.OperationalError("database or disk is full"),
    ):

        def full(*args, error=error, **kwargs):
            raise error

        monkeypatch.setattr(tessera.indexing.builder, "build_index", full)
        result = run_cli("index", str(corpus), "-o", str(tmp_path / "idx"), check=False)
        assert result.returncode == 1 and result.stderr.startswith("error: no space left on device")
        assert "Traceback" not in result.stderr


def test_a_benchmark_count_below_its_minimum_is_a_usage_error(capsys: pytest.CaptureFixture) -> None:
    """`filters.py --repeats 0` took the median of no timing (a StatisticsError traceback)."""
    parser = argparse.ArgumentParser(prog="filters.py")
    parser.add_argument("--repeats", type=at_least(1), default=3)
    parser.add_argument("--folds", type=at_least(2), default=2)
    assert parser.parse_args(["--repeats", "1", "--folds", "5"]) == argparse.Namespace(repeats=1, folds=5)
    for given, said in [
        (["--repeats", "0"], "argument --repeats: must be at least 1, got 0"),
        (["--folds", "1"], "argument --folds: must be at least 2, got 1"),
        (["--repeats", "two"], "argument --repeats: 'two' is not a whole number"),
    ]:
        with pytest.raises(SystemExit) as exited:
            parser.parse_args(given)
        assert exited.value.code == 2 and said in capsys.readouterr().err


def test_ctrl_c_in_a_command_says_how_to_resume(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    """typer turned the KeyboardInterrupt into a silent exit 130, so the line never showed; it
    says "resume" only after a command that resumes (it did after `search` and `info` too)."""
    from tessera.cli import app, report_errors, resumes

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("tessera.indexing.info.index_info", interrupted)
    for resumable, said in [
        (False, "interrupted"),
        (True, "interrupted (run the same command again to resume)"),
    ]:
        with pytest.raises(SystemExit) as exited:
            report_errors(lambda: app(args=["info", str(tmp_path)], prog_name="tessera"), resumable=resumable)
        assert exited.value.code == 130
        assert capsys.readouterr().err.strip() == said
    assert resumes(["index", "corpus", "-o", "out"]) and resumes(
        ["--debug", "train", "dense", "--dataset", "x"]
    )
    assert resumes(["eval-rag", "idx", "--dataset", "d", "--json", "out.json"])
    assert resumes(["eval-rag", "idx", "--json=out.json"]) and resumes(
        ["data", "synth-queries", "c", "-o", "q"]
    )
    for argv in (
        ["search", "idx", "q"],
        ["info", "idx"],
        ["eval-rag", "idx", "--dataset", "d"],
        ["train", "jpq"],
    ):
        assert not resumes(argv), argv
