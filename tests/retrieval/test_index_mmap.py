"""`Index.load(mmap=True)`: faiss index files mapped instead of read give the same results,
are really mapped (the process's memory map names the file), and survive updates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tessera.indexing.reindex import reindex
from tessera.retrieval.index import Index
from tests.conftest import mapped_here as mapped
from tests.conftest import needs_maps, run_cli

pytestmark = needs_maps


@pytest.fixture(scope="module")
def queries(data_dir: Path) -> list[str]:
    lines = (data_dir / "cranfield-beir" / "queries.jsonl").read_text().splitlines()
    return [json.loads(line)["text"] for line in lines]


def ranked(index: Index, queries: list[str]) -> tuple[list[list[str]], np.ndarray]:
    hits = index.batch_search(queries, 10)
    return [[h.doc_id for h in row] for row in hits], np.array([[h.score for h in row] for row in hits])


@pytest.mark.parametrize("factory", ["Flat", "IVF16,RaBitQ,RFlat", "HNSW32"])
def test_mapped_index_searches_like_the_read_one(
    cranfield_dense: Path, queries: list[str], tmp_path: Path, factory: str
) -> None:
    path = reindex(cranfield_dense, tmp_path / "x", factory, show_progress=False)  # a file no one has mapped
    read = Index.load(path)
    assert not mapped(path / "vectors.faiss")
    mapped_index = Index.load(path, encoder=read.encoder, mmap=True)
    assert mapped(path / "vectors.faiss")
    (ids_r, scores_r), (ids_m, scores_m) = ranked(read, queries), ranked(mapped_index, queries)
    assert ids_m == ids_r  # all 225 Cranfield queries, top 10
    np.testing.assert_array_equal(scores_m, scores_r)
    read.close()
    mapped_index.close()


def test_updates_reopen_mapped_and_earlier_readers_keep_their_version(
    cranfield_dense: Path, queries: list[str], tmp_path: Path
) -> None:
    path = reindex(cranfield_dense, tmp_path / "flat", "Flat", show_progress=False)
    writer = Index.load(path, mmap=True)
    reader = Index.load(path, encoder=writer.encoder, mmap=True)
    top = writer.search(queries[0], 10)[0].doc_id
    assert writer.delete([top]) == 1
    assert top not in [h.doc_id for h in writer.search(queries[0], 10)]
    assert mapped(path / "vectors.faiss") and writer._given[2]  # reopened mapped, on the new file
    assert reader.search(queries[0], 10)[0].doc_id == top  # its mapping is the version it opened


def test_cli_search_mmap(cranfield_dense: Path) -> None:
    args = ("search", str(cranfield_dense), "boundary layer separation", "--json", "-k", "5")
    assert json.loads(run_cli(*args, "--mmap").stdout) == json.loads(run_cli(*args).stdout)


@pytest.mark.parametrize("mode", ["colbert", "xtr"])
def test_mapped_token_index_scores_like_the_read_one(
    cranfield_tokens: Path, queries: list[str], tmp_path: Path, mode: str
) -> None:
    path = shutil.copytree(cranfield_tokens, tmp_path / "tokens")  # a file no one has mapped
    read = Index.load(path, search_params={"mode": mode})
    mapped_index = Index.load(path, encoder=read.encoder, search_params={"mode": mode}, mmap=True)
    assert mapped(path / "tokens.faiss") and mapped(path / "token_docs.npy")
    (ids_r, scores_r), (ids_m, scores_m) = ranked(read, queries[:40]), ranked(mapped_index, queries[:40])
    assert ids_m == ids_r
    np.testing.assert_array_equal(scores_m, scores_r)
