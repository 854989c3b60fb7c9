"""`tessera serve` options, and the one search validation as the CLI shows it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tessera.cli.app import app
from tessera.errors import TesseraError, TesseraWarning
from tessera.serve import ServeSettings
from tessera.serve.auth import digest
from tests.conftest import run_cli


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """What `uvicorn.run` was asked to do (nothing is started)."""
    calls: list[dict] = []
    monkeypatch.setenv("TESSERA_SERVE_SETTINGS", "{}")  # restored after: `serve` writes it for workers
    monkeypatch.setattr("uvicorn.run", lambda target, **kwargs: calls.append({"target": target, **kwargs}))
    return calls


def test_binds_loopback_by_default(started: list[dict], serve_indexes: dict[str, Path]) -> None:
    result = CliRunner().invoke(app, ["serve", str(serve_indexes["head-bm25"])], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert started[0]["host"] == "127.0.0.1" and started[0]["port"] == 8000 and started[0]["workers"] == 1
    assert ServeSettings().host == "127.0.0.1"
    settings = ServeSettings.from_env()  # what each worker process builds its app from
    assert settings.indexes == {"head-bm25": str(serve_indexes["head-bm25"].resolve())}


def test_options_reach_the_settings(
    started: list[dict], serve_indexes: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESSERA_API_KEY", "a-key-from-the-environment")
    args = ["serve", f"a={serve_indexes['head-bm25']}", f"b={serve_indexes['head-minilm']}"]
    args += ["--host", "0.0.0.0", "--port", "9001", "--workers", "2", "--max-k", "50", "--max-batch", "1"]
    origins = ["--cors-origin", "https://a.example.org", "--cors-origin", "http://localhost:3000"]
    CliRunner().invoke(
        app, [*args, "--mmap", "--writable", *origins, "--follow-up", "turns"], catch_exceptions=False
    )
    assert (started[0]["host"], started[0]["port"], started[0]["workers"]) == ("0.0.0.0", 9001, 2)
    settings = ServeSettings.from_env()
    assert list(settings.indexes) == ["a", "b"] and settings.max_k == 50 and settings.max_batch == 1
    assert settings.mmap and not ServeSettings().mmap
    assert settings.writable and not ServeSettings().writable  # read-only unless asked
    assert settings.api_key_digests == [digest("a-key-from-the-environment")]
    assert settings.cors_origins == ["https://a.example.org", "http://localhost:3000"]
    assert ServeSettings().cors_origins == []  # same origin only unless named
    assert settings.follow_up == "turns" and ServeSettings().follow_up == "last"


def test_an_exposed_service_needs_a_key_to_write(
    started: list[dict], serve_indexes: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Off loopback: --writable without a key is refused, read-only without one is warned of; a key
    file is read (one bad line stops it, naming the line) and only its digests reach the workers."""
    monkeypatch.delenv("TESSERA_API_KEY", raising=False)
    index = str(serve_indexes["head-bm25"])
    with pytest.raises(TesseraError, match="--writable on 0.0.0.0 lets anyone"):
        CliRunner().invoke(app, ["serve", index, "--host", "0.0.0.0", "--writable"], catch_exceptions=False)
    assert not started
    with pytest.warns(TesseraWarning, match="serving on 0.0.0.0 with no API key"):
        CliRunner().invoke(app, ["serve", index, "--host", "0.0.0.0"], catch_exceptions=False)
    assert ServeSettings.from_env().api_key_digests == []
    keys = tmp_path / "keys"
    keys.write_text("first-key-of-the-file\nsecond-key-of-the-file\n")
    keys.chmod(0o600)
    result = run_cli(
        "serve", index, "--host", "0.0.0.0", "--writable", "--api-key-file", str(keys), "--port", "0"
    )
    assert result.returncode == 0 and "warning" not in result.stderr
    settings = ServeSettings.from_env()
    assert settings.writable and settings.api_key_digests == sorted(map(digest, keys.read_text().split()))
    keys.write_text("first-key-of-the-file\nshort\n")
    result = run_cli("serve", index, "--api-key-file", str(keys), check=False)
    assert (
        result.returncode == 1 and f"{keys}:2" in result.stderr and "at least 16 characters" in result.stderr
    )


def test_bad_arguments_fail_before_starting(
    started: list[dict], serve_indexes: dict[str, Path], tmp_path
) -> None:
    runner = CliRunner()
    with pytest.raises(TesseraError, match="no such index directory"):
        runner.invoke(app, ["serve", str(tmp_path / "missing")], catch_exceptions=False)
    same = str(serve_indexes["head-bm25"])
    with pytest.raises(TesseraError, match="two indexes named"):
        runner.invoke(app, ["serve", same, same], catch_exceptions=False)
    for name in ("team/a", ".."):  # the write routes address an index as one URL path segment
        with pytest.raises(TesseraError, match=f"index name '{re.escape(name)}' cannot be one segment"):
            runner.invoke(app, ["serve", f"{name}={same}"], catch_exceptions=False)
    with pytest.raises(TesseraError, match="workers"):
        runner.invoke(app, ["serve", same, "--workers", "0"], catch_exceptions=False)
    with pytest.raises(TesseraError, match="--writable with several workers needs --reload-seconds > 0"):
        runner.invoke(
            app,
            ["serve", same, "--writable", "--workers", "2", "--reload-seconds", "0"],
            catch_exceptions=False,
        )
    with pytest.raises(TesseraError, match="follow_up 'rewrite' needs a generator"):
        runner.invoke(app, ["serve", same, "--follow-up", "rewrite"], catch_exceptions=False)
    with pytest.raises(TesseraError, match="unknown follow_up 'all'"):
        runner.invoke(app, ["serve", same, "--follow-up", "all"], catch_exceptions=False)
    with pytest.raises(TesseraError, match="field 'rerank': unknown encoder 'nosuchmodel'"):
        runner.invoke(app, ["serve", same, "--rerank", "nosuchmodel"], catch_exceptions=False)
    with pytest.raises(TesseraError, match="field 'port': must be 0-65535, got 70000"):
        runner.invoke(app, ["serve", same, "--port", "70000"], catch_exceptions=False)
    assert not started


def test_cli_search_refuses_bad_k_and_empty_query(serve_indexes: dict[str, Path]) -> None:
    """`search -k 0` ended in a faiss AssertionError traceback: now one line on stderr, exit 1."""
    index = str(serve_indexes["head-minilm"])
    result = run_cli("search", index, "layer", "-k", "0", check=False)
    assert result.returncode == 1 and "k must be at least 1" in result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(TesseraError, match="query 1 of 1 is empty"):  # same path, in-process
        CliRunner().invoke(app, ["search", index, "  "], catch_exceptions=False)
    # a command-line argument that was not UTF-8 arrives with a lone surrogate (surrogateescape)
    with pytest.raises(TesseraError, match="query 1 of 1 holds U\\+DCFF, a lone surrogate"):
        CliRunner().invoke(app, ["search", index, "wing \udcff"], catch_exceptions=False)
