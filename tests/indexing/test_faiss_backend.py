from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from tessera.errors import EncoderError, TesseraError
from tessera.indexing.faiss_backend import FaissBackend, build_faiss_index, gpu_count


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    rng = np.random.default_rng(7)
    data = rng.standard_normal((4000, 64)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize(
    ("factory", "params", "min_recall"),
    [
        ("Flat", {}, 1.0),
        ("HNSW32", {"efSearch": 128}, 0.95),
        ("IVF16,Flat", {"nprobe": 16}, 1.0),
        ("PQ16", {}, 0.3),
        ("OPQ8,IVF16,PQ8", {"nprobe": 16}, 0.2),
    ],
)
def test_factory_kinds_build_save_load_search(tmp_path: Path, vectors, factory, params, min_recall) -> None:
    backend = FaissBackend(build_faiss_index(vectors, factory), params)
    backend.save(tmp_path)
    loaded = FaissBackend.load(tmp_path, params)
    queries = vectors[:50]
    _, labels = loaded.search(queries, 10)
    truth = exact_top(vectors, queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(labels, truth, strict=True)])
    assert recall >= min_recall
    assert loaded.index.ntotal == len(vectors)


def test_search_params_reach_the_index(vectors) -> None:
    backend = FaissBackend(build_faiss_index(vectors, "IVF16,Flat"), {"nprobe": 5})
    assert faiss.extract_index_ivf(backend.index).nprobe == 5
    with pytest.raises(TesseraError, match="'efSearch' does not apply") as info:
        FaissBackend(build_faiss_index(vectors, "IVF16,Flat"), {"efSearch": 5})
    assert str(info.value) == (  # it carried faiss' C++ function, file and line
        "field 'search_params': search parameter 'efSearch' does not apply to this index (a faiss "
        "IndexIVFFlat; IVF kinds take nprobe, HNSW kinds efSearch)"
    )
    with pytest.raises(TesseraError, match="'nprobe' takes a number, got 'x'"):
        FaissBackend(build_faiss_index(vectors, "IVF16,Flat"), {"nprobe": "x"})


def test_dimension_mismatch_on_search(vectors) -> None:
    backend = FaissBackend(build_faiss_index(vectors, "Flat"))
    with pytest.raises(EncoderError, match="dimension mismatch: index holds 64-d vectors, queries are 32-d"):
        backend.search(vectors[:2, :32], 5)


def test_untrainable_factory_is_a_clear_error(vectors) -> None:
    with pytest.raises(TesseraError, match="could not train 'IVF8192,Flat'"):
        build_faiss_index(vectors[:100], "IVF8192,Flat")
    # Fewer vectors than dimensions: faiss' OPQ training corrupted the heap (a segfault, and a
    # build's folder left behind); refused before it is reached.
    with pytest.raises(
        TesseraError, match="OPQ16 learns a rotation of all 64 dimensions and needs at least 64"
    ):
        build_faiss_index(vectors[:63], "OPQ16,PQ16")


@pytest.mark.gpu
def test_gpu_search_matches_cpu(vectors) -> None:
    assert gpu_count() > 0
    cpu = build_faiss_index(vectors, "Flat")
    backend = FaissBackend(cpu)
    assert backend.on_gpu
    gpu_scores, gpu_labels = backend.search(vectors[:20], 10)
    cpu_scores, cpu_labels = cpu.search(vectors[:20], 10)
    np.testing.assert_array_equal(gpu_labels, cpu_labels)
    np.testing.assert_allclose(gpu_scores, cpu_scores, atol=1e-4)


@pytest.mark.parametrize(
    ("factory", "params"),
    [
        ("Flat", {}),
        ("IVF16,Flat", {"nprobe": 16}),  # all lists: exact, so the carried nprobe is checked
        ("IVF16,SQ8,Refine(Flat)", {"nprobe": 16, "k_factor_rf": 64}),
        ("OPQ16,IVF16,Flat", {"nprobe": 16}),
        ("HNSW32", {"efSearch": 512}),
    ],
)
def test_search_within_keeps_only_the_given_labels(vectors: np.ndarray, factory: str, params: dict) -> None:
    backend = FaissBackend(build_faiss_index(vectors, factory), params)
    labels = np.arange(3, len(vectors), 11)
    queries = vectors[:6]
    scores, found = backend.search_within(queries, 10, labels)
    expected = labels[exact_top(vectors[labels], queries, 10)]
    assert np.isin(found, labels).all()
    assert (found == expected).mean() >= (0.95 if "HNSW" in factory else 1.0)


@pytest.mark.parametrize("factory", ["PQ16", "IVF16,PQ16x4fs"])
def test_search_within_is_none_where_faiss_cannot_restrict(vectors: np.ndarray, factory: str) -> None:
    assert (
        FaissBackend(build_faiss_index(vectors, factory)).search_within(vectors[:2], 5, np.arange(9)) is None
    )


@pytest.mark.parametrize(
    ("factory", "says"),
    [
        ("IVF0,Flat", "an IVF index needs at least one list"),  # was faiss' assertion while tuning
        ("IDMap,Flat", "leave out IDMap"),  # was "add does not make sense with IndexIDMap"
        ("HNSW1", "at least 2 links a node"),  # a segfault; HNSW0 a faiss abort
        ("IVF2_HNSW0,Flat", "at least 2 links a node"),
        ("PQ10", r"PQ10 cuts the 64 dimensions into 10 parts: m must divide 64 \(4, 8, 16, 32, 64\)"),
        ("IVF8,PQ7", "PQ7 cuts the 64 dimensions"),
        ("IVF8,Flat ", "spaces around it"),
        ("flat", r"not a faiss index factory string \(e.g. Flat, HNSW32"),
    ],
)
def test_factory_strings_faiss_would_crash_on_or_answer_in_cpp_are_named(vectors, factory, says) -> None:
    with pytest.raises(TesseraError, match=says) as info:
        build_faiss_index(vectors[:300], factory)
    assert info.value.field == "index" and "/project/faiss" not in str(info.value)


def test_too_few_vectors_for_8_bit_codebooks_says_what_would_fit(vectors) -> None:
    with pytest.raises(TesseraError, match=r"\(256\); PQ's codebooks hold 256 codes .* PQ16x4") as info:
        build_faiss_index(vectors[:200], "IVF4,PQ16")
    assert "Error in" not in str(info.value)
