"""Shared fixtures: real collections from ../shared/data, indexes built once through the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TESSERA_DATA_DIR", REPO.parent / "shared" / "data")).resolve()


def pytest_configure(config: pytest.Config) -> None:
    os.environ["TESSERA_DATA_DIR"] = str(DATA)
    os.environ.setdefault("TESSERA_CACHE_DIR", str(REPO / ".tessera-cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from tessera.indexing.faiss_backend import gpu_count

    if gpu_count() == 0:
        skip = pytest.mark.skip(reason="no GPU visible to faiss")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA / "cranfield" / "cran.tar.gz").is_file():
        pytest.skip(f"test collections not found in {DATA}")
    return DATA


def run_cli(*args: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real `tessera` entry point in a subprocess (exit codes and stderr as users see them)."""
    result = subprocess.run(
        [sys.executable, "-c", "from tessera.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=os.environ.copy(),
    )
    if check and result.returncode != 0:
        raise AssertionError(f"tessera {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def indexes(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    return tmp_path_factory.mktemp("indexes")


@pytest.fixture(scope="session")
def cranfield_bm25(indexes: Path) -> Path:
    run_cli("index", "cranfield", "-o", str(indexes / "cran-bm25"), "--encoder", "bm25")
    return indexes / "cran-bm25"


@pytest.fixture(scope="session")
def cranfield_dense(indexes: Path) -> Path:
    run_cli("index", "cranfield", "-o", str(indexes / "cran-minilm"), "--encoder", "minilm")
    return indexes / "cran-minilm"
