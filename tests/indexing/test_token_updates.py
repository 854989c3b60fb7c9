"""Adding and deleting documents in token (ColBERT/XTR) indexes (indexing/token_edits.py) on
real Cranfield documents: an updated index answers like a build of the final corpus."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tessera.errors import IndexFormatError
from tessera.indexing.builder import build_index
from tessera.indexing.manifest import Manifest
from tessera.indexing.reindex import reindex
from tessera.indexing.residual import ResidualTokens
from tessera.indexing.token_backend import TokenBackend
from tessera.indexing.updates import add_documents
from tessera.retrieval.index import Index
from tests.conftest import update_corpora

BASE, ADDED = 60, 20  # token encoding is slow on 2 cores: a small corpus


@pytest.fixture(scope="module")
def corpora(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Base: Cranfield's first 60 documents; more: the next 20; gone: 6 base and 2 added ids."""
    return update_corpora(
        data_dir, tmp_path_factory.mktemp("token-update-corpora"), BASE, ADDED, (3, 11), queries=20
    )


@pytest.fixture(scope="module")
def spec(token_model: Path) -> str:
    return f"colbert:{token_model}"


@pytest.fixture(scope="module")
def base_tokens(corpora, spec, tmp_path_factory) -> Path:
    return build_index(
        corpora["base"], tmp_path_factory.mktemp("tb") / "flat", encoder=spec, show_progress=False
    )


@pytest.fixture(scope="module")
def final_tokens(corpora, spec, tmp_path_factory) -> Path:
    return build_index(
        corpora["final"], tmp_path_factory.mktemp("tf") / "flat", encoder=spec, show_progress=False
    )


def updated(index: Path, corpora: dict) -> Path:
    opened = Index.load(index)
    assert opened.add(corpora["more"]) == ADDED
    assert opened.delete(corpora["gone"]) == len(corpora["gone"])
    return index


def results(index: Path, queries: list[str], encoder, **params) -> tuple[list[list[str]], np.ndarray]:
    hits = Index.load(index, encoder=encoder, search_params=params or None).batch_search(queries, k=10)
    return [[h.doc_id for h in row] for row in hits], np.array([[h.score for h in row] for row in hits])


def assert_answers_like(index: Path, rebuilt: Path, queries: list[str], **params) -> None:
    encoder = Index.load(rebuilt).encoder
    for mode in ("colbert", "xtr"):
        ids, scores = results(index, queries, encoder, mode=mode, **params)
        expected_ids, expected_scores = results(rebuilt, queries, encoder, mode=mode, **params)
        assert ids == expected_ids, mode
        # token vectors of a document encoded in another batch differ by float noise only
        np.testing.assert_allclose(scores, expected_scores, atol=2e-3)


def test_flat_token_index_add_then_delete_equals_a_rebuild(base_tokens, final_tokens, corpora, tmp_path):
    index = updated(Path(shutil.copytree(base_tokens, tmp_path / "idx")), corpora)
    manifest = Manifest.read(index)  # verifies every checksum
    assert manifest.doc_count == BASE + ADDED - len(corpora["gone"])
    for name in ("token_docs.npy", "doc_offsets.npy"):
        np.testing.assert_array_equal(np.load(index / name), np.load(final_tokens / name), err_msg=name)
    assert (index / "docids.txt").read_text() == (final_tokens / "docids.txt").read_text()
    ours, theirs = TokenBackend(index), TokenBackend(final_tokens)
    assert ours.token_count == theirs.token_count == ours.faiss.ntotal
    np.testing.assert_allclose(
        ours.stored.rows(np.arange(ours.token_count)),
        theirs.stored.rows(np.arange(theirs.token_count)),
        atol=2e-3,
    )
    assert_answers_like(index, final_tokens, corpora["queries"])
    hits = Index.load(index).batch_search(corpora["queries"], k=10)
    assert not set(corpora["gone"]) & {h.doc_id for row in hits for h in row}


@pytest.mark.parametrize("factory, params", [("IVF16,Flat", {"nprobe": 16}), ("HNSW16", {"efSearch": 4096})])
def test_ivf_and_hnsw_token_indexes_equal_a_rebuild_at_full_search(
    factory, params, base_tokens, final_tokens, corpora, tmp_path
):
    index = updated(reindex(base_tokens, tmp_path / "idx", factory, params, show_progress=False), corpora)
    rebuilt = reindex(final_tokens, tmp_path / "rebuilt", factory, params, show_progress=False)
    assert Manifest.read(index).factory == factory
    assert TokenBackend(index).faiss.ntotal == TokenBackend(rebuilt).faiss.ntotal
    assert_answers_like(index, rebuilt, corpora["queries"], **params)


def test_residual_token_index_encodes_added_tokens_with_its_own_codebook(corpora, spec, tmp_path):
    base = build_index(
        corpora["base"], tmp_path / "res", encoder=spec, doc_vectors="residual:2", show_progress=False
    )
    before = TokenBackend(base)
    kept_docs = [d for d in range(BASE) if d % 10]  # the base documents the deletion keeps
    kept_rows = np.concatenate([np.arange(before.offsets[d], before.offsets[d + 1]) for d in kept_docs])
    old_codes = np.asarray(before.stored.codes)[kept_rows]
    updated(base, corpora)
    after = TokenBackend(base)
    assert after.doc_count == BASE + ADDED - len(corpora["gone"])
    np.testing.assert_array_equal(np.asarray(after.stored.codes)[: len(kept_rows)], old_codes)
    # Added documents' tokens decode near their float vectors (2-bit residuals: cosine ~0.9).
    added = after.stored.rows(np.arange(len(kept_rows), after.token_count))
    exact = after.faiss.index.reconstruct_n(len(kept_rows), after.token_count - len(kept_rows))
    cosine = np.sum(added * exact, axis=1) / np.linalg.norm(exact, axis=1)
    assert cosine.mean() > 0.85, cosine.mean()
    top = Index.load(base).search(corpora["queries"][0], k=3)
    assert len(top) == 3

    # An index from before residual_cutoffs.npy existed refuses to add, and is left unchanged.
    manifest = json.loads((base / "manifest.json").read_text())
    del manifest["files"][ResidualTokens.CUTOFFS]
    (base / ResidualTokens.CUTOFFS).unlink()
    (base / "manifest.json").write_text(json.dumps(manifest))
    new = tmp_path / "new.jsonl"
    new.write_text(json.dumps({"_id": "new-1", "title": "", "text": "shock waves in nozzles"}) + "\n")
    with pytest.raises(IndexFormatError, match="rebuild it"):
        add_documents(base, new, show_progress=False)
    assert len(Index.load(base)) == BASE + ADDED - len(corpora["gone"])
