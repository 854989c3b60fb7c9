from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tessera.errors import IndexFormatError, TesseraError
from tessera.models.bebr import CONFIG, WEIGHTS, RecurrentBinarizer

DIM = 64


def random_binarizer(bits: int, seed: int = 0) -> RecurrentBinarizer:
    """A binarizer with every tensor moved off its neutral start, so round trips mean something."""
    torch.manual_seed(seed)
    model = RecurrentBinarizer(DIM, bits)
    rotation, _ = torch.linalg.qr(torch.randn(DIM, DIM))
    with torch.no_grad():
        model.rotation.copy_(rotation)
        model.center.normal_(0, 0.05)
        model.offset.normal_(0, 0.05)
        model.scales.uniform_(0.01, 0.1)
        for parameter in model.steps.parameters():
            parameter.normal_(0, 0.05)
    return model.eval()


def vectors(count: int = 20, seed: int = 1) -> np.ndarray:
    data = np.random.default_rng(seed).standard_normal((count, DIM)).astype(np.float32)
    return data / np.linalg.norm(data, axis=1, keepdims=True)


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_codes_hold_exactly_u_times_d_bits(bits: int) -> None:
    model = random_binarizer(bits)
    codes = model.encode(vectors())
    assert codes.dtype == np.uint8
    assert codes.shape == (20, bits * DIM // 8)
    assert codes.shape[1] * 8 == bits * DIM
    decoded = model.decode(codes)
    assert decoded.dtype == np.float32
    assert decoded.shape == (20, DIM)


@pytest.mark.parametrize("bits", [1, 3])
def test_bit_j_times_u_plus_s_is_step_s_of_dimension_j(bits: int) -> None:
    model = random_binarizer(bits)
    data = vectors()
    with torch.no_grad():
        signs, _ = model(torch.from_numpy(data))
    stream = np.unpackbits(model.encode(data), axis=1, bitorder="little")
    for dim, step in [(0, 0), (5, bits - 1), (DIM - 1, 0)]:
        assert np.array_equal(stream[:, dim * bits + step], (signs[:, dim, step] > 0).numpy())


def test_decoded_inner_products_equal_code_space_ones() -> None:
    model = random_binarizer(2)
    codes = model.encode(vectors())
    decoded, code_space = model.decode(codes), model.code_space(codes)
    np.testing.assert_allclose(decoded @ decoded.T, code_space @ code_space.T, atol=1e-5)


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_save_load_round_trip_gives_identical_codes(tmp_path: Path, bits: int) -> None:
    model = random_binarizer(bits)
    model.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([WEIGHTS, CONFIG])
    loaded = RecurrentBinarizer.load(tmp_path)
    data = vectors(50)
    assert np.array_equal(loaded.encode(data), model.encode(data))
    assert np.array_equal(loaded.decode(model.encode(data)), model.decode(model.encode(data)))


def test_chunk_tables_hold_every_chunk_value() -> None:
    model = random_binarizer(2)
    codes = model.encode(vectors(1))
    tables = model.chunk_tables(4)  # 4 dims x 2 bits = one byte per chunk
    assert tables.shape == (DIM // 4, 256, 4)
    rebuilt = np.concatenate([tables[chunk, code] for chunk, code in enumerate(codes[0])])
    np.testing.assert_allclose(rebuilt, model.code_space(codes)[0], atol=1e-6)


@pytest.mark.parametrize(("dim", "bits", "field"), [(64, 0, "bits"), (64, 5, "bits"), (60, 1, "dim")])
def test_bad_shapes_are_refused(dim: int, bits: int, field: str) -> None:
    with pytest.raises(TesseraError) as error:
        RecurrentBinarizer(dim, bits)
    assert error.value.field == field


def test_wrong_inputs_are_clear_errors() -> None:
    model = random_binarizer(1)
    with pytest.raises(TesseraError, match="binarizer takes 64-d vectors"):
        model.encode(vectors()[:, :32])
    with pytest.raises(TesseraError, match=r"codes must be uint8 \[n, 8\]"):
        model.decode(np.zeros((2, 9), dtype=np.uint8))


def test_missing_or_foreign_files_are_index_format_errors(tmp_path: Path) -> None:
    with pytest.raises(IndexFormatError, match="config is missing"):
        RecurrentBinarizer.load(tmp_path)
    (tmp_path / CONFIG).write_text(json.dumps({"format": "other"}))
    with pytest.raises(IndexFormatError, match="not a tessera-bebr-binarizer"):
        RecurrentBinarizer.load(tmp_path)
    random_binarizer(1).save(tmp_path)
    (tmp_path / CONFIG).write_text((tmp_path / CONFIG).read_text().replace('"bits": 1', '"bits": 2'))
    with pytest.raises(IndexFormatError, match="cannot load binarizer weights"):
        RecurrentBinarizer.load(tmp_path)
    (tmp_path / WEIGHTS).write_bytes(b"not a safetensors file")
    (tmp_path / CONFIG).write_text((tmp_path / CONFIG).read_text().replace('"bits": 2', '"bits": 1'))
    with pytest.raises(IndexFormatError, match="cannot load binarizer weights"):
        RecurrentBinarizer.load(tmp_path)
