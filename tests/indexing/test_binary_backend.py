from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tessera.errors import EncoderError, IndexFormatError, TesseraError
from tessera.indexing.binary_backend import BebrBackend, SignBinaryBackend, sdc_gpu_source
from tessera.models.bebr import RecurrentBinarizer

DIM = 64


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Matrices this small lose more to thread hand-offs than they gain on a shared 2-core box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def random_binarizer(bits: int, seed: int = 0) -> RecurrentBinarizer:
    torch.manual_seed(seed)
    model = RecurrentBinarizer(DIM, bits)
    rotation, _ = torch.linalg.qr(torch.randn(DIM, DIM))
    with torch.no_grad():
        model.rotation.copy_(rotation)
        model.offset.normal_(0, 0.05)
        model.scales.uniform_(0.01, 0.1)
        for parameter in model.steps.parameters():
            parameter.normal_(0, 0.05)
    return model.eval()


@pytest.fixture(scope="module")
def docs() -> np.ndarray:
    data = np.random.default_rng(7).standard_normal((3000, DIM)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


def brute_force(binarizer: RecurrentBinarizer, docs: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Every query-document score from decoded, binarized vectors."""
    return binarizer.decode(binarizer.encode(queries)) @ binarizer.decode(binarizer.encode(docs)).T


def numpy_hamming(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return np.unpackbits(left[:, None, :] ^ right[None, :, :], axis=2).sum(axis=2)


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_sdc_scores_equal_brute_force_from_decoded_vectors(docs: np.ndarray, bits: int) -> None:
    binarizer = random_binarizer(bits)
    backend = BebrBackend.build(binarizer, docs, mode="sdc")
    queries = docs[:40]
    scores, labels = backend.search(queries, 10)
    exact = brute_force(binarizer, docs, queries)
    assert labels.dtype == np.int64 and scores.dtype == np.float32
    np.testing.assert_allclose(scores, np.take_along_axis(exact, labels, axis=1), atol=1e-4)
    np.testing.assert_allclose(scores, -np.sort(-exact, axis=1)[:, :10], atol=1e-4)


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_adc_scores_the_unbinarized_query_against_decoded_codes(docs: np.ndarray, bits: int) -> None:
    """ADC is SDC with the query's code-space reconstruction exact: m + (q - c) R."""
    binarizer = random_binarizer(bits)
    with torch.no_grad():
        binarizer.center.normal_(0, 0.1)
    backend = BebrBackend.build(binarizer, docs, mode="adc")
    queries = docs[:40]
    scores, labels = backend.search(queries, 10)
    rotation, center, offset = (
        t.detach().numpy() for t in (binarizer.rotation, binarizer.center, binarizer.offset)
    )
    exact = (offset + (queries - center) @ rotation) @ binarizer.code_space(backend.codes).T
    np.testing.assert_allclose(scores, np.take_along_axis(exact, labels, axis=1), atol=1e-4)
    np.testing.assert_allclose(scores, -np.sort(-exact, axis=1)[:, :10], atol=1e-4)
    sdc_scores, _ = BebrBackend(binarizer, backend.codes, "sdc").search(queries, 10)
    assert not np.allclose(scores, sdc_scores, atol=1e-3)
    # already binarized queries have no float form: SDC in either mode
    codes = binarizer.encode(queries)
    for got, want in zip(
        backend.search_codes(codes, 10),
        BebrBackend(binarizer, backend.codes, "sdc").search_codes(codes, 10),
        strict=True,
    ):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_index_handed_to_a_gpu_computes_the_same_sdc_scores(docs: np.ndarray, bits: int) -> None:
    """Checked on the CPU: the IVF-PQ form faiss would clone to a GPU sums the same look-ups."""
    binarizer = random_binarizer(bits)
    codes = binarizer.encode(docs)
    queries = docs[:20]
    scores, labels = sdc_gpu_source(binarizer, codes).search(
        binarizer.code_space(binarizer.encode(queries)), 10
    )
    np.testing.assert_allclose(
        scores, np.take_along_axis(brute_force(binarizer, docs, queries), labels, 1), atol=1e-4
    )


@pytest.mark.parametrize("bits", [1, 2])
def test_hamming_search_equals_numpy_hamming(docs: np.ndarray, bits: int) -> None:
    binarizer = random_binarizer(bits)
    backend = BebrBackend.build(binarizer, docs, mode="hamming")
    queries = docs[100:130]
    scores, labels = backend.search(queries, 15)
    distances = numpy_hamming(binarizer.encode(queries), backend.codes)
    total_bits = bits * DIM
    assert np.array_equal(scores, total_bits - 2 * np.take_along_axis(distances, labels, axis=1))
    assert np.array_equal(scores, total_bits - 2 * np.sort(distances, axis=1)[:, :15])


def test_sign_backend_scores_are_inner_products_of_signs(docs: np.ndarray) -> None:
    backend = SignBinaryBackend.build(docs)
    queries = docs[:25]
    scores, labels = backend.search(queries, 10)
    signs = np.where(queries >= 0, 1, -1) @ np.where(docs >= 0, 1, -1).T
    assert np.array_equal(scores, np.take_along_axis(signs, labels, axis=1))
    assert np.array_equal(scores, -np.sort(-signs, axis=1)[:, :10])
    assert np.all(labels[:, 0] == np.arange(25))  # every vector is its own best match


def test_rescoring_reorders_hamming_candidates_by_decoded_inner_product(docs: np.ndarray) -> None:
    binarizer = random_binarizer(2)
    codes = binarizer.encode(docs)
    queries = docs[:30]
    _, plain = BebrBackend(binarizer, codes, "hamming").search(queries, 10)
    scores, labels = BebrBackend(binarizer, codes, "hamming", rescore=200).search(queries, 10)
    exact = brute_force(binarizer, docs, queries)
    np.testing.assert_allclose(scores, np.take_along_axis(exact, labels, axis=1), atol=1e-4)
    assert np.all(np.diff(scores, axis=1) <= 0)
    assert not np.array_equal(labels, plain)
    everything, _ = BebrBackend(binarizer, codes, "hamming", rescore=len(docs)).search(queries, 10)
    np.testing.assert_allclose(everything, -np.sort(-exact, axis=1)[:, :10], atol=1e-4)


@pytest.mark.parametrize("mode", ["sdc", "adc", "hamming"])
def test_bebr_save_load_search_round_trip(tmp_path: Path, docs: np.ndarray, mode: str) -> None:
    backend = BebrBackend.build(random_binarizer(2), docs, mode=mode)
    backend.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "binarizer.json",
        "binarizer.safetensors",
        "codes.faiss",
    ]
    loaded = BebrBackend.load(tmp_path, mode=mode)
    assert np.array_equal(loaded.codes, backend.codes)
    assert (loaded.dim, loaded.on_gpu, loaded.supports_remove) == (DIM, False, False)
    for got, want in zip(loaded.search(docs[:20], 10), backend.search(docs[:20], 10), strict=True):
        assert np.array_equal(got, want)


def test_sign_save_load_search_round_trip(tmp_path: Path, docs: np.ndarray) -> None:
    backend = SignBinaryBackend.build(docs)
    backend.save(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["codes.faiss"]
    loaded = SignBinaryBackend.load(tmp_path)
    assert loaded.dim == DIM
    for got, want in zip(loaded.search(docs[:20], 10), backend.search(docs[:20], 10), strict=True):
        assert np.array_equal(got, want)


def test_k_beyond_the_collection_returns_everything(docs: np.ndarray) -> None:
    backend = BebrBackend.build(random_binarizer(1), docs[:50])
    scores, labels = backend.search(docs[:3], 80)
    assert scores.shape == labels.shape == (3, 50)
    assert sorted(labels[0]) == list(range(50))


def test_configuration_and_input_errors(tmp_path: Path, docs: np.ndarray) -> None:
    binarizer = random_binarizer(1)
    codes = binarizer.encode(docs[:10])
    with pytest.raises(TesseraError, match="unknown search mode 'ivf'"):
        BebrBackend(binarizer, codes, "ivf")
    with pytest.raises(TesseraError, match="in hamming mode only"):
        BebrBackend(binarizer, codes, "sdc", rescore=10)
    with pytest.raises(TesseraError, match=r"uint8 \[n, 8\]"):
        BebrBackend(binarizer, random_binarizer(2).encode(docs[:10]))
    with pytest.raises(EncoderError, match="index holds 64-d vectors, queries are 32-d"):
        BebrBackend(binarizer, codes).search(docs[:2, :32], 5)
    with pytest.raises(EncoderError, match=r"query codes must be uint8 \[n, 8\]"):
        BebrBackend(binarizer, codes, "hamming").search_codes(codes[:, :4], 5)
    with pytest.raises(IndexFormatError, match="binarizer config is missing"):
        BebrBackend.load(tmp_path)
    with pytest.raises(IndexFormatError, match="binary codes are missing"):
        SignBinaryBackend.load(tmp_path)
    (tmp_path / "codes.faiss").write_bytes(b"truncated")
    with pytest.raises(IndexFormatError, match="cannot read binary codes"):
        SignBinaryBackend.load(tmp_path)
