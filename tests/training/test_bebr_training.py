from __future__ import annotations

import numpy as np
import pytest
import torch

from tessera.errors import TesseraError
from tessera.indexing.binary_backend import BebrBackend
from tessera.models.bebr import RecurrentBinarizer
from tessera.training.bebr import train_binarizer

DIM = 64


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Matrices this small lose more to thread hand-offs than they gain on a shared 2-core box."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def normalized(data: np.ndarray) -> np.ndarray:
    return (data / np.linalg.norm(data, axis=1, keepdims=True)).astype(np.float32)


def clustered(count: int = 1200, clusters: int = 40, seed: int = 0) -> np.ndarray:
    """Embeddings with neighbourhoods worth preserving (pure noise has none)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIM))
    return normalized(centres[rng.integers(0, clusters, count)] + 0.6 * rng.standard_normal((count, DIM)))


def recall_at_10(labels: np.ndarray, queries: np.ndarray, docs: np.ndarray) -> float:
    truth = np.argsort(-(queries @ docs.T), axis=1)[:, :10]
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(labels, truth, strict=True)]))


def test_training_lowers_the_loss_and_is_deterministic() -> None:
    data = clustered()
    model, losses = train_binarizer(data, 2, epochs=8, seed=3, show_progress=False)
    assert isinstance(model, RecurrentBinarizer) and not model.training
    assert len(losses) == 8
    assert losses[-1] < losses[0]
    again, same_losses = train_binarizer(data, 2, epochs=8, seed=3, show_progress=False)
    assert same_losses == losses
    assert np.array_equal(again.encode(data), model.encode(data))


def test_compatible_training_keeps_new_query_codes_searchable_in_an_old_index() -> None:
    """An upgraded encoder (its space turned and perturbed) with a new binarizer: new query codes
    must still rank the old index's document codes, through the old index's own tables."""
    old_embeddings = clustered()
    rng = np.random.default_rng(1)
    turn, _ = np.linalg.qr(rng.standard_normal((DIM, DIM)))
    new_embeddings = normalized(old_embeddings @ turn + 0.05 * rng.standard_normal(old_embeddings.shape))
    old, _ = train_binarizer(old_embeddings, 2, epochs=8, show_progress=False)
    compatible, _ = train_binarizer(
        new_embeddings,
        2,
        epochs=8,
        seed=1,
        previous=old,
        previous_embeddings=old_embeddings,
        show_progress=False,
    )
    independent, _ = train_binarizer(new_embeddings, 2, epochs=8, seed=1, show_progress=False)
    old_index = BebrBackend(old, old.encode(old_embeddings), "sdc")
    queries = new_embeddings[:200]

    def recall(binarizer: RecurrentBinarizer) -> float:
        _, labels = old_index.search_codes(binarizer.encode(queries), 10)
        return recall_at_10(labels, queries, new_embeddings)

    assert recall(compatible) > 0.4
    assert recall(compatible) > recall(independent) + 0.3
    _, own = BebrBackend.build(compatible, new_embeddings).search(queries, 10)
    assert recall_at_10(own, queries, new_embeddings) > 0.4  # still a good binarizer on its own


def test_previous_binarizer_must_match_bits_and_dim() -> None:
    data = clustered(200)
    old, _ = train_binarizer(data, 1, epochs=1, show_progress=False)
    with pytest.raises(TesseraError) as error:
        train_binarizer(data, 2, epochs=1, previous=old, show_progress=False)
    assert error.value.field == "previous"
    with pytest.raises(TesseraError) as error:
        train_binarizer(data, 1, epochs=1, previous=old, previous_embeddings=data[:10], show_progress=False)
    assert error.value.field == "previous_embeddings"


def test_needs_a_matrix_of_embeddings() -> None:
    with pytest.raises(TesseraError, match="at least 2 embeddings"):
        train_binarizer(np.zeros((1, DIM), dtype=np.float32), 1, show_progress=False)


def test_epochs_are_checked() -> None:
    data = clustered(200)
    with pytest.raises(TesseraError) as error:
        train_binarizer(data, 1, epochs=-1, show_progress=False)
    assert error.value.field == "epochs"
    old, losses = train_binarizer(data, 1, epochs=0, show_progress=False)
    assert losses == []  # the ITQ start alone
    with pytest.raises(TesseraError, match="at least 1 for compatible training"):
        train_binarizer(data, 1, epochs=0, previous=old, show_progress=False)
