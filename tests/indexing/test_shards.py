"""Vector shard files (indexing/shards.py): an index built from shards, or merged from parts
filled per shard, equals the in-memory build of the same rows; shard rows read like one array."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from tessera.errors import IndexFormatError
from tessera.indexing.faiss_backend import build_faiss_index
from tessera.indexing.shards import (
    ShardRows,
    build_from_shards,
    fill,
    merge_parts,
    mergeable,
    shard_rows,
    trained_index,
    write_shard,
)

DIM = 32
SPLITS = [(0, 700), (700, 2500), (2500, 3000)]  # uneven shards, as a distributed plan's last one


@pytest.fixture(scope="module")
def rows_and_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, list[Path]]:
    rng = np.random.default_rng(7)
    rows = rng.standard_normal((3000, DIM)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    folder = tmp_path_factory.mktemp("shards")
    files = []
    for number, (start, stop) in enumerate(SPLITS):
        files.append(folder / f"shard-{number:05d}.f32")
        write_shard(files[-1], rows[start:stop])
    return rows, files


def search(index: faiss.Index, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if faiss.try_extract_index_ivf(index) is not None:
        faiss.ParameterSpace().set_index_parameter(index, "nprobe", 4)
    return index.search(queries, 10)


@pytest.mark.parametrize("factory", ["Flat", "IVF16,Flat", "IVF16,PQ8"])
def test_build_from_shards_equals_the_in_memory_build(rows_and_files, factory: str) -> None:
    rows, files = rows_and_files
    queries = rows[:40] + 0.05
    expected = search(build_faiss_index(rows, factory), queries)
    found = search(build_from_shards(files, DIM, factory), queries)
    np.testing.assert_array_equal(found[1], expected[1])
    np.testing.assert_allclose(found[0], expected[0], atol=1e-6)


def test_hnsw_from_shards_finds_what_the_in_memory_graph_finds(rows_and_files) -> None:
    """A graph depends on how its rows were batched into `add`, so not equal: as good."""
    rows, files = rows_and_files
    queries = rows[:40] + 0.05
    exact = search(build_faiss_index(rows, "Flat"), queries)[1]
    for index in (build_faiss_index(rows, "HNSW16"), build_from_shards(files, DIM, "HNSW16")):
        index.hnsw.efSearch = 128
        found = search(index, queries)[1]
        assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact, strict=True)]) >= 0.95


@pytest.mark.parametrize("factory", ["Flat", "IVF16,Flat", "IVF16,PQ8"])
def test_parts_filled_per_shard_merge_into_the_same_index(rows_and_files, factory: str) -> None:
    rows, files = rows_and_files
    trained = trained_index(files, DIM, factory)
    assert mergeable(trained)
    parts = [fill(faiss.clone_index(trained), [path]) for path in files]
    merged = merge_parts(parts)
    assert merged.ntotal == len(rows)
    queries = rows[:40] + 0.05
    expected = search(build_faiss_index(rows, factory), queries)
    found = search(merged, queries)
    np.testing.assert_array_equal(found[1], expected[1])
    np.testing.assert_allclose(found[0], expected[0], atol=1e-6)


def test_hnsw_is_not_mergeable(rows_and_files) -> None:
    _, files = rows_and_files
    assert not mergeable(trained_index(files, DIM, "HNSW16"))


def test_shard_rows_read_like_one_array(rows_and_files) -> None:
    rows, files = rows_and_files
    view = ShardRows(files, DIM)
    assert len(view) == len(rows) and view.shape == rows.shape
    np.testing.assert_array_equal(view[650:2600], rows[650:2600])
    picked = np.array([0, 699, 700, 2499, 2500, 2999])  # both sides of every shard edge
    np.testing.assert_array_equal(view[picked], rows[picked])
    np.testing.assert_array_equal(view[np.arange(1000, 1200)], rows[1000:1200])


def test_a_damaged_shard_is_refused(rows_and_files, tmp_path: Path) -> None:
    _, files = rows_and_files
    damaged = tmp_path / "damaged.f32"
    damaged.write_bytes(files[0].read_bytes()[:-3])
    with pytest.raises(IndexFormatError, match="not a whole number of 32-d rows"):
        shard_rows(damaged, DIM)
    assert not list(tmp_path.glob("*.partial"))
