"""`tessera index --ray`: Ray-encoded indexes equal the single-process build, in both layouts,
after a killed driver and after a killed worker. One local 2-CPU Ray cluster serves the module."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tessera.errors import TesseraError
from tessera.indexing.builder import build_index
from tessera.indexing.distributed import build_index_ray
from tessera.indexing.manifest import Manifest
from tessera.indexing.ray_encoding import KILL_HOOK
from tessera.indexing.reindex import reindex
from tessera.retrieval.index import Index
from tests.conftest import run_cli

IVF = "IVF16,Flat"
SHARDS = 4


@pytest.fixture(scope="module")
def ray_address() -> str:
    """A local 2-CPU Ray cluster (`ray start --head`: two encoder actors) for the module, stopped
    at its end. Builds run as `tessera index --ray` subprocesses joining it, so Ray's runtime
    never loads into the test process (after `ray.shutdown()` its threads crashed later tests)."""
    pytest.importorskip("ray")
    ray = str(Path(sys.executable).with_name("ray"))
    # `ray start` turns token authentication on; a private test cluster does without it, and
    # the builds (subprocesses, which copy this environment) must agree.
    saved = {name: os.environ.get(name) for name in ("RAY_USAGE_STATS_ENABLED", "RAY_AUTH_MODE")}
    os.environ.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
    start = [ray, "start", "--head", "--num-cpus", "2", "--include-dashboard", "false", "--port", "0"]
    started = subprocess.run(start, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    address = re.search(r"--address='([^']+)'", started.stdout + started.stderr)
    assert address, started.stdout
    yield address.group(1)
    subprocess.run([ray, "stop", "--force"], capture_output=True)
    for name, value in saved.items():
        os.environ.pop(name) if value is None else os.environ.update({name: value})


def build_ray(ray_address: str, corpus: Path, output: Path, *options: str, **env: str) -> Path:
    """`tessera index CORPUS -o OUTPUT --ray` on the module's cluster; returns OUTPUT."""
    args = ["index", str(corpus), "-o", str(output), "--ray", "--ray-address", ray_address, *options]
    run_cli(*args, env=env)
    return output


@pytest.fixture(scope="module")
def corpus(cranfield_head: Path) -> Path:
    return cranfield_head / "corpus.jsonl"


@pytest.fixture(scope="module")
def queries(cranfield_head: Path) -> list[str]:
    lines = (cranfield_head / "queries.jsonl").read_text().splitlines()
    return [json.loads(line)["text"] for line in lines][:40]


@pytest.fixture(scope="module")
def single(corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    """Single-process builds by factory, made once."""
    root, built = tmp_path_factory.mktemp("single"), {}

    def get(factory: str) -> Path:
        if factory not in built:
            built[factory] = build_index(corpus, root / factory, factory=factory, show_progress=False)
        return built[factory]

    return get


def results(
    path: Path, queries: list[str], encoder=None, mmap: bool = False
) -> tuple[list[list[str]], np.ndarray, object]:
    index = Index.load(path, encoder=encoder, mmap=mmap)
    hits = index.batch_search(queries, 10)
    index.close()
    return (
        [[h.doc_id for h in row] for row in hits],
        np.array([[h.score for h in row] for row in hits]),
        index.encoder,
    )


def assert_same_search(left: Path, right: Path, queries: list[str], mmap: bool = False) -> None:
    """`right` (mapped when `mmap`) answers as `left` does."""
    ids_l, scores_l, encoder = results(left, queries)
    ids_r, scores_r, _ = results(right, queries, encoder, mmap)
    assert ids_l == ids_r
    np.testing.assert_allclose(scores_l, scores_r, atol=1e-5)


def docs(path: Path) -> list[tuple]:
    with sqlite3.connect(path / "docstore.sqlite") as db:
        return db.execute("SELECT ordinal, id, title, text FROM docs ORDER BY ordinal").fetchall()


def assert_same_index(built: Path, alone: Path, queries: list[str]) -> None:
    """A Ray build of the module's corpus in SHARDS shards equals the single-process build."""
    assert_same_search(alone, built, queries)
    assert docs(built) == docs(alone)
    merged, single_manifest = Manifest.read(built), Manifest.read(alone)
    assert merged.backend == "faiss" and [s["rows"] for s in merged.shards] == [38, 38, 38, 36]
    assert sorted(merged.files) == ["docids.txt", "docstore.sqlite", "vectors.faiss"]
    assert (built / "docids.txt").read_text() == (alone / "docids.txt").read_text()
    assert merged.search_params == single_manifest.search_params and merged.tuning == single_manifest.tuning


# Flat's merge is the concatenation that IVF's lists also hold (the IVF build below runs by default).
@pytest.mark.slow
def test_merged_flat_equals_single_process_build(ray_address, corpus, queries, single, tmp_path) -> None:
    built = build_ray(ray_address, corpus, tmp_path / "ray", "--shards", str(SHARDS))
    assert_same_index(built, single("Flat"), queries)


def test_killed_worker_is_retried_and_ivf_equals_single_process(
    ray_address, corpus, queries, single, tmp_path
) -> None:
    marker = tmp_path / "killed-once"
    options = ("--index", IVF, "--shards", str(SHARDS))
    built = build_ray(ray_address, corpus, tmp_path / "ray", *options, **{KILL_HOOK: f"2:{marker}"})
    assert marker.exists()  # the actor encoding shard 2 did SIGKILL itself
    assert_same_index(built, single(IVF), queries)


@pytest.fixture(scope="module")
def sharded(ray_address, corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    """`--layout sharded` builds by factory (SHARDS shards), made once; tests copy before editing."""
    root, built = tmp_path_factory.mktemp("sharded"), {}

    def get(factory: str) -> Path:
        if factory not in built:
            options = ("--index", factory, "--shards", str(SHARDS), "--layout", "sharded")
            built[factory] = build_ray(ray_address, corpus, root / factory, *options)
        return built[factory]

    return get


# Flat is the simpler case of the same merge (IVF's lists hold the same rows): slow-marked.
@pytest.mark.parametrize("factory", [pytest.param("Flat", marks=pytest.mark.slow), IVF])
def test_sharded_layout_searches_like_the_merged_one(queries, single, sharded, factory, tmp_path) -> None:
    built = sharded(factory)
    manifest = Manifest.read(built)
    assert manifest.backend == "sharded"
    assert sorted(manifest.files)[2:] == [f"shards/shard-0000{n}.faiss" for n in range(SHARDS)]
    assert manifest.search_params == Manifest.read(single(factory)).search_params
    assert_same_search(single(factory), built, queries)
    assert_same_search(single(factory), built, queries, mmap=True)  # every shard file mapped
    if factory == "Flat":  # the shards' vectors, in label order, reindexed as one index
        again = reindex(built, tmp_path / "hnsw", "HNSW32", show_progress=False)
        alone = reindex(single(factory), tmp_path / "single-hnsw", "HNSW32", show_progress=False)
        assert_same_search(alone, again, queries)


def test_sharded_index_updates_like_the_merged_one(corpus, queries, single, sharded, tmp_path) -> None:
    """Deletes hit three of the four shards (one wholly) and adds make a fifth; the sharded index
    then answers as the merged single-process index after the same updates, and at full nprobe
    as a Flat build of the final corpus. Untouched shard files are linked, not copied."""
    lines = corpus.read_text().splitlines()
    ids = [json.loads(line)["_id"] for line in lines]
    edited = shutil.copytree(sharded(IVF), tmp_path / "sharded")
    merged = shutil.copytree(single(IVF), tmp_path / "merged")
    untouched = (edited / "shards" / "shard-00002.faiss").stat().st_ino
    gone = [0, 1, *range(38, 76), 149]  # shards of rows [0, 38) [38, 76) [76, 114) [114, 150)
    returned = [*range(40, 50), 149]  # deleted, then added again as new documents
    back = tmp_path / "back.jsonl"
    back.write_text("".join(lines[i] + "\n" for i in returned))
    for path in (edited, merged):
        index = Index.load(path)
        assert index.delete([ids[i] for i in gone]) == len(gone)
        assert index.add(back) == 11
        index.close()

    manifest = Manifest.read(edited)
    assert manifest.backend == "sharded" and manifest.doc_count == 150 - len(gone) + 11
    shards = [(s["name"], s["first"], s["rows"], "sha256" in s) for s in manifest.shards]
    assert shards == [
        ("shard-00000", 0, 36, False),
        ("shard-00002", 36, 38, True),
        ("shard-00003", 74, 35, False),
        ("shard-00004", 109, 11, True),
    ]
    assert (edited / "shards" / "shard-00002.faiss").stat().st_ino == untouched
    assert not (edited / "shards" / "shard-00001.faiss").exists()
    assert_same_search(merged, edited, queries)

    final = tmp_path / "final.jsonl"
    final.write_text("".join(lines[i] + "\n" for i in range(150) if i not in set(gone) - set(returned)))
    flat = build_index(final, tmp_path / "flat", show_progress=False)
    full = Index.load(edited, search_params={"nprobe": 16})
    ids_f, scores_f, _ = results(flat, queries)
    hits = full.batch_search(queries, 10)
    ids_s = [[h.doc_id for h in row] for row in hits]
    scores_s = np.array([[h.score for h in row] for row in hits])
    assert ids_s == ids_f
    np.testing.assert_allclose(scores_s, scores_f, atol=1e-5)
    assert Index.load(edited).compact() == 0  # no tombstones: Flat and IVF shards remove vectors
    with pytest.raises(
        TesseraError, match="reindex reads the vectors of Flat shards, not of IndexIVFFlat ones"
    ):
        reindex(edited, tmp_path / "hnsw", "HNSW32")


@pytest.mark.slow
def test_killed_driver_resumes_from_its_shards(ray_address, corpus, queries, single, tmp_path) -> None:
    output = tmp_path / "ray"
    args = ["index", str(corpus), "--ray", "--ray-address", ray_address, "--shards", "6", "-o", str(output)]
    command = [sys.executable, "-c", "from tessera.cli import main; main()", *args]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = output.with_name(f"{output.name}.tmp-{process.pid}") / "shards"
    deadline = time.time() + 300
    while not list(folder.glob("shard-*.f32")):
        assert process.poll() is None and time.time() < deadline, "the build ended before it could be killed"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    encoded = len(list(folder.glob("shard-*.f32")))
    assert 1 <= encoded < 6 and not output.exists()
    resumed = run_cli(*args)
    assert f"resuming: {encoded} of 6 shards already encoded" in resumed.stderr
    assert_same_search(single("Flat"), output, queries)
    assert docs(output) == docs(single("Flat"))


def test_lexical_and_token_encoders_are_refused(corpus, tmp_path) -> None:
    result = run_cli(
        "index", str(corpus), "-o", str(tmp_path / "x"), "--ray", "--encoder", "bm25", check=False
    )
    assert result.returncode != 0 and "--ray builds dense single-vector indexes" in result.stderr
    with pytest.raises(TesseraError, match="token vectors"):
        build_index_ray(corpus, tmp_path / "y", encoder="colbert:/nowhere")
    with pytest.raises(TesseraError, match="layout must be merged or sharded"):
        build_index_ray(corpus, tmp_path / "z", layout="striped")
    chunked = run_cli("index", str(corpus), "-o", str(tmp_path / "c"), "--ray", "--chunk", "128", check=False)
    assert chunked.returncode != 0 and "--chunk is not supported with --ray" in chunked.stderr
    assert not any(tmp_path.iterdir())


def test_unshardable_kinds_are_refused_before_ray_starts(corpus, tmp_path) -> None:
    """In this process: the refusal comes before Ray is imported or started."""
    with pytest.raises(TesseraError, match="HNSW graphs searched shard by shard"):
        build_index_ray(corpus, tmp_path / "h", factory="HNSW32", layout="sharded")
    with pytest.raises(TesseraError, match="layout sharded takes faiss Flat and IVF kinds: 'binary'"):
        build_index_ray(corpus, tmp_path / "b", factory="binary", layout="sharded")
    assert not any(tmp_path.iterdir())


def test_missing_ray_says_how_to_install(corpus, tmp_path) -> None:
    code = "import sys; sys.modules['ray'] = None; from tessera.cli import main; main()"
    command = [sys.executable, "-c", code, "index", str(corpus), "-o", str(tmp_path / "x"), "--ray"]
    result = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
    assert result.returncode != 0 and "pip install 'tessera[dist]'" in result.stderr
    assert not any(tmp_path.iterdir())
