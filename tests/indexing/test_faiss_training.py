"""faiss training as Tessera sets it: polysemous training off everywhere, and faiss' per-k-means
warnings as one Tessera warning with the trained index unchanged."""

from __future__ import annotations

import warnings

import faiss
import numpy as np
import pytest

from tessera.errors import TesseraWarning
from tessera.indexing.faiss_backend import build_faiss_index, create_index
from tessera.indexing.faiss_training import one_clustering_warning, parts

VECTORS = np.random.default_rng(0).standard_normal((500, 16)).astype(np.float32)


def faiss_alone(factory: str) -> np.ndarray:
    """The index faiss itself trains and fills, warnings and all."""
    index = create_index(VECTORS.shape[1], factory)
    index.train(VECTORS)
    index.add(VECTORS)
    return faiss.serialize_index(index)


@pytest.mark.parametrize(
    ("factory", "centroids"),
    [("OPQ4,PQ4", 256), ("PQ4", 256), ("IVF16,PQ4", 256), ("HNSW8_PQ4", 256), ("IVF32,Flat", 32)],
)
def test_one_warning_and_the_same_index(factory: str, centroids: int, capfd: pytest.CaptureFixture) -> None:
    faiss_alone(factory)
    assert "WARNING clustering" in capfd.readouterr().err  # what users saw, once per k-means
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index = build_faiss_index(VECTORS, factory)
    assert "WARNING clustering" not in capfd.readouterr().err
    ours = [str(w.message) for w in caught if issubclass(w.category, TesseraWarning)]
    assert ours == [
        f"field 'index': '{factory}' was trained on 500 vectors; faiss asks for {centroids * 39} to "
        f"place {centroids} centroids well, so its codes are coarser than on a larger corpus"
    ]
    assert np.array_equal(faiss.serialize_index(index), faiss_alone(factory))


def test_enough_vectors_no_warning(capfd: pytest.CaptureFixture) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_faiss_index(VECTORS, "IVF8,Flat")  # 8 x 39 = 312 <= 500
    assert "WARNING" not in capfd.readouterr().err


def test_the_lent_quantizer_is_taken_back() -> None:
    index = create_index(VECTORS.shape[1], "OPQ4,PQ4")
    opq = faiss.downcast_VectorTransform(faiss.downcast_index(index).chain.at(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with one_clustering_warning(index, len(VECTORS), "OPQ4,PQ4"):
            assert opq.pq is not None
            index.train(VECTORS)
    assert opq.pq is None
    again = faiss.deserialize_index(faiss.serialize_index(index))
    assert again.is_trained and again.d == VECTORS.shape[1]


@pytest.mark.parametrize("factory", ["PQ4", "OPQ4,PQ4", "HNSW8_PQ4", "PQ4,RFlat", "IVF8,PQ4"])
def test_polysemous_training_is_off_in_every_pq(factory: str) -> None:
    index = create_index(VECTORS.shape[1], factory)
    flags = [part.do_polysemous_training for part in parts(index) if hasattr(part, "do_polysemous_training")]
    assert flags and not any(flags)
