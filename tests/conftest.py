"""Shared fixtures: real collections from ../shared/data, indexes built once through the CLI."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tessera.retrieval.index import Index

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


def free_port() -> int:
    """A loopback TCP port nothing listens on now (a server started on it, or a refused connection)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(
    *args: str,
    check: bool = True,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    isolated: bool = False,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    """Run the real `tessera` entry point (`tessera.cli.main`): its exit code, stdout and stderr
    as users see them. In this process, so a call pays no interpreter, torch or JVM start-up,
    unless `isolated`, `env` is given (variables added to this environment) or the command
    starts Ray (`--ray`, whose runtime must not load into the test process): those run in a
    subprocess, as from a shell. `input` is its standard input."""
    if isolated or env or "--ray" in args:
        result = subprocess.run(
            [sys.executable, "-c", "from tessera.cli import main; main()", *args],
            capture_output=True,
            text=True,
            input=input,
            cwd=cwd,
            env={**os.environ, **(env or {})},
        )
    else:
        result = _run_in_process(list(args), cwd, input)
    if check and result.returncode != 0:
        raise AssertionError(f"tessera {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def _run_in_process(
    args: list[str], cwd: Path | None, input: str | None = None
) -> subprocess.CompletedProcess:
    """`main()` with this call's argv, working directory and captured streams; every warning
    shown, as in a fresh process, and the CLI's global state put back afterwards."""
    from tessera.cli import main
    from tessera.cli.app import state

    out, err, saved_state = io.StringIO(), io.StringIO(), dict(state)
    saved_argv, saved_stdin, saved_cwd, code = sys.argv, sys.stdin, os.getcwd(), 0
    try:
        sys.argv = ["tessera", *args]
        sys.stdin = io.StringIO(input or "")
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("always")
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except Exception:  # what the interpreter does with an uncaught one: traceback, status 1
                traceback.print_exc()
                code = 1
    finally:
        sys.argv, sys.stdin = saved_argv, saved_stdin
        os.chdir(saved_cwd)
        state.clear()
        state.update(saved_state)
    return subprocess.CompletedProcess(["tessera", *args], code, out.getvalue(), err.getvalue())


MAPS = Path("/proc/self/maps")  # the Linux kernel's list of this process's mapped files
needs_maps = pytest.mark.skipif(not MAPS.is_file(), reason="reads the process memory map (Linux)")


def mapped_here(path: Path) -> bool:
    """Whether this process maps `path` (tests of `Index.load(mmap=True)`)."""
    return str(Path(path).resolve()) in MAPS.read_text()


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """A BEIR qrels TSV read independently of tessera's reader (tests compare the two)."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(newline="") as handle:
        for query_id, doc_id, grade in list(csv.reader(handle, delimiter="\t"))[1:]:
            qrels.setdefault(query_id, {})[doc_id] = int(grade)
    return qrels


def read_corpus(folder: Path) -> dict[str, dict]:
    """A BEIR folder's corpus.jsonl by id."""
    lines = (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    return {doc["_id"]: doc for doc in map(json.loads, lines)}


def kill_then_resume(args: list[str], output: Path, after: int, total: int) -> int:
    """`tessera ARGS -o OUTPUT`, SIGKILLed once its progress file counts `after` documents, then
    run again to completion. Returns how many documents the killed run had committed."""
    command = [sys.executable, "-c", "from tessera.cli import main; main()", *args, "-o", str(output)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = output.with_name(f"{output.name}.tmp-{process.pid}") / "progress.json"
    deadline = time.time() + 180
    while time.time() < deadline:
        if progress.exists() and json.loads(progress.read_text())["done"] >= after:
            break
        assert process.poll() is None, "indexing finished before it could be killed"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = json.loads(progress.read_text())["done"]
    assert after <= done < total and not output.exists()
    resumed = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    assert resumed.returncode == 0, resumed.stderr
    return done


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


TOKEN_DOCS = 150  # Cranfield documents in the shared token index (~25 s to encode on 2 CPU cores)


@pytest.fixture(scope="session")
def token_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A multi-vector model on the bundled MiniLM with its seeded, untrained projection."""
    from tessera.models.bundled import bundled_path
    from tessera.models.multivector import new_multivector_model

    path = tmp_path_factory.mktemp("models") / "colbert-minilm"
    new_multivector_model(bundled_path("minilm")).save(str(path))
    return path


@pytest.fixture(scope="session")
def cranfield_head(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BEIR folder: the first TOKEN_DOCS Cranfield documents, the test queries judged on them."""
    source = data_dir / "cranfield-beir"
    folder = tmp_path_factory.mktemp("corpora") / "cranfield-head"
    (folder / "qrels").mkdir(parents=True)
    lines = (source / "corpus.jsonl").read_text().splitlines()[:TOKEN_DOCS]
    (folder / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    kept = {json.loads(line)["_id"] for line in lines}
    header, *rows = (source / "qrels" / "test.tsv").read_text().splitlines()
    rows = [row for row in rows if row.split("\t")[1] in kept]
    (folder / "qrels" / "test.tsv").write_text("\n".join([header, *rows]) + "\n")
    judged = {row.split("\t")[0] for row in rows}
    queries = [
        q for q in (source / "queries.jsonl").read_text().splitlines() if json.loads(q)["_id"] in judged
    ]
    (folder / "queries.jsonl").write_text("\n".join(queries) + "\n")
    return folder


@pytest.fixture(scope="session")
def cranfield_tokens(indexes: Path, token_model: Path, cranfield_head: Path) -> Path:
    """A Flat token index (colbert:) of `cranfield_head`, built through the CLI."""
    out = indexes / "cran-tokens"
    corpus = cranfield_head / "corpus.jsonl"
    run_cli("index", str(corpus), "-o", str(out), "--encoder", f"colbert:{token_model}")
    return out


@pytest.fixture(scope="session")
def cranfield_docs(data_dir: Path) -> dict[str, dict]:
    """Cranfield's BEIR corpus by id."""
    lines = (data_dir / "cranfield-beir" / "corpus.jsonl").read_text().splitlines()
    return {doc["_id"]: doc for doc in map(json.loads, lines)}


@pytest.fixture(scope="session")
def rag_tools():
    """What compressors work with: the bundled LLM's tokenizer and the bundled MiniLM."""
    from tessera.models.registry import load_encoder
    from tessera.rag.compressors import Tools
    from tessera.rag.tokens import token_counter

    minilm = load_encoder("minilm")
    return Tools(token_counter(), minilm.encode_docs, minilm.encode_queries)


@pytest.fixture(scope="session")
def passages_of(cranfield_docs: dict[str, dict]):
    """Cranfield documents as retrieved passages, ranked in the given order."""

    from tessera.rag.passages import Passage
    from tessera.retrieval.hits import Hit

    def make(ids: list[str]) -> list[Passage]:
        return [
            Passage.from_hit(Hit(i, 1.0 / rank, rank, cranfield_docs[i]["title"], cranfield_docs[i]["text"]))
            for rank, i in enumerate(ids, 1)
        ]

    return make


def update_corpora(
    data_dir: Path, folder: Path, base: int, added: int, added_gone: tuple[int, ...], queries: int
) -> dict:
    """Corpora for update tests, from Cranfield's first `base + added` documents. base: the first
    `base`; more: the next `added`; gone: every tenth base id and the added ones at `added_gone`;
    final: what remains, in the order an update keeps (base survivors, then added survivors)."""
    lines = (data_dir / "cranfield-beir" / "corpus.jsonl").read_text().splitlines()[: base + added]
    ids = [json.loads(line)["_id"] for line in lines]
    gone = ids[:base:10] + [ids[base + offset] for offset in added_gone]
    for name, rows in (
        ("base", lines[:base]),
        ("more", lines[base:]),
        ("final", [line for line, i in zip(lines, ids, strict=True) if i not in gone]),
    ):
        (folder / f"{name}.jsonl").write_text("\n".join(rows) + "\n")
    texts = [
        json.loads(q)["text"]
        for q in (data_dir / "cranfield-beir" / "queries.jsonl").read_text().splitlines()
    ]
    return {
        "dir": folder,
        "gone": gone,
        "queries": texts[:queries],
        **{n: folder / f"{n}.jsonl" for n in ("base", "more", "final")},
    }


@pytest.fixture(scope="session")
def serve_indexes(indexes: Path, cranfield_head: Path) -> dict[str, Path]:
    """name -> index directory, over the same 150 documents (so fusion and doc views agree)."""
    corpus = str(cranfield_head / "corpus.jsonl")
    built = {}
    for name, encoder in (("head-minilm", "minilm"), ("head-bm25", "bm25")):
        built[name] = indexes / name
        run_cli("index", corpus, "-o", str(built[name]), "--encoder", encoder)
    return built


@pytest.fixture(scope="session")
def loaded(serve_indexes: dict[str, Path]) -> dict[str, Index]:
    from tessera.retrieval.index import Index

    return {name: Index.load(path) for name, path in serve_indexes.items()}
