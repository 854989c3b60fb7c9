from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tessera.errors import TesseraError
from tessera.indexing.manifest import Manifest
from tessera.indexing.reindex import reindex
from tessera.retrieval.index import Index


def test_reindex_flat_to_compressed_kinds_without_reencoding(cranfield_dense: Path, tmp_path: Path) -> None:
    flat = Index.load(cranfield_dense)
    query = "heat transfer at hypersonic speeds"
    exact = [h.doc_id for h in flat.search(query, k=10)]
    for factory, params, min_overlap in (("HNSW32", {"efSearch": 256}, 9), ("OPQ48,PQ48", {}, 5)):
        name = factory.replace(",", "_")
        out = reindex(cranfield_dense, tmp_path / name, factory, params, show_progress=False)
        manifest = Manifest.read(out)
        assert (manifest.factory, manifest.backend, manifest.doc_count) == (factory, "faiss", 1400)
        assert manifest.search_params == params and manifest.encoder == "minilm"
        assert (out / "docids.txt").read_text() == (cranfield_dense / "docids.txt").read_text()
        found = [h.doc_id for h in Index.load(out).search(query, k=10)]
        assert len(set(found) & set(exact)) >= min_overlap, factory


def test_reindex_needs_exact_vectors(cranfield_dense: Path, cranfield_bm25: Path, tmp_path: Path) -> None:
    pq = reindex(cranfield_dense, tmp_path / "pq", "PQ16", show_progress=False)
    said = "'PQ16': reindex reads the vectors of Flat and HNSW indexes"
    with pytest.raises(TesseraError, match=said) as kept:
        reindex(pq, tmp_path / "again", "Flat", show_progress=False)
    assert kept.value.file == str(pq) and kept.value.field == "factory"
    with pytest.raises(TesseraError, match="lucene index keeps no float vectors"):
        reindex(cranfield_bm25, tmp_path / "bm25", "Flat", show_progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pq"]


def test_stored_vectors_are_the_flat_index_vectors(cranfield_dense: Path) -> None:
    from tessera.indexing.faiss_backend import FaissBackend

    vectors = FaissBackend.load(cranfield_dense).exact_vectors()
    assert vectors.shape == (1400, 384) and vectors.dtype == np.float32
