"""A RecurrentBinarizer's unsupervised start: an ITQ rotation and greedy residual signs.

Fitting it is to BEBR what training a quantizer is to faiss' PQ: no labels, the corpus's own
embeddings, run when a `bebr:BITS` index is built. Measured on four collections
(benchmarks/bebr_settings.py, docs/results.md section 7), this start kept as much of flat
search's nDCG@10 as 60 epochs of refinement, so an index is fitted with it alone
(`fit_start`); `tessera train bebr` (training/bebr.py) refines it, starting from `initialize`.
"""

from __future__ import annotations

import numpy as np
import torch

from tessera.errors import TesseraError
from tessera.models.bebr import RecurrentBinarizer

ITQ_ROWS = 65_536  # rows that fit the rotation; plenty for a d x d orthogonal matrix
ITQ_ITERATIONS = 30
OFFSET_START = 0.5  # fraction of the centre the offset starts from; training sets the rest


def procrustes(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The orthogonal R minimising ||source @ R - target||."""
    left, _, right = torch.linalg.svd(source.T @ target)
    return left @ right


def fit_rotation(centred: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Iterative quantization (Gong & Lazebnik): the rotation whose sign bits lose the least.

    Alternates the best codes for a rotation and the best rotation for the codes (Procrustes),
    from a random orthogonal start; balancing variance over dimensions is what matters most."""
    dim = centred.shape[1]
    rows = torch.randperm(len(centred), generator=generator)[:ITQ_ROWS]
    sample = centred[rows]
    rotation, _ = torch.linalg.qr(torch.randn(dim, dim, generator=generator))
    for _ in range(ITQ_ITERATIONS):
        rotation = procrustes(sample, torch.where(sample @ rotation >= 0, 1.0, -1.0))
    return rotation


def initialize(
    model: RecurrentBinarizer,
    embeddings: torch.Tensor,
    generator: torch.Generator,
    previous: RecurrentBinarizer | None = None,
    previous_embeddings: torch.Tensor | None = None,
) -> None:
    """Greedy residual sign quantization in a fitted basis.

    Each step's scales are the mean absolute residual, the best scale for a fixed sign. With a
    previous binarizer the basis is the old code space (Procrustes on the paired embeddings),
    so new and old bits start out meaning the same thing."""
    with torch.no_grad():
        model.center.copy_(embeddings.mean(dim=0))
        centred = embeddings - model.center
        if previous is None:
            model.rotation.copy_(fit_rotation(centred, generator))
        else:
            paired = embeddings if previous_embeddings is None else previous_embeddings
            model.rotation.copy_(procrustes(centred, previous.to_code_space(paired)))
        model.offset.copy_(OFFSET_START * model.center @ model.rotation)
        residual = centred @ model.rotation
        for step in range(model.bits):
            scale = residual.abs().mean(dim=0)
            model.scales[step].copy_(scale)
            residual = residual - scale * torch.where(residual >= 0, 1.0, -1.0)


def as_matrix(embeddings: np.ndarray) -> np.ndarray:
    """Writable, contiguous float32 rows (torch cannot wrap a read-only memmap), at least two."""
    matrix = np.require(embeddings, np.float32, ["C", "W"])
    if matrix.ndim != 2 or len(matrix) < 2:
        raise TesseraError(
            f"need a [n, d] matrix of at least 2 embeddings, got {list(matrix.shape)}", field="embeddings"
        )
    return matrix


def seeded_model(
    dim: int, bits: int, hidden: int | None, seed: int
) -> tuple[RecurrentBinarizer, torch.Generator]:
    """A fresh binarizer and the generator its fit draws from, both from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the refinement blocks' initial weights
    return RecurrentBinarizer(dim, bits, hidden), generator


def fit_start(
    embeddings: np.ndarray, bits: int, seed: int = 0, hidden: int | None = None
) -> RecurrentBinarizer:
    """The start fitted to `embeddings` (in eval mode): what a `bebr:BITS` index is built with,
    and what `train_binarizer(..., epochs=0)` returns for the same seed."""
    data = torch.from_numpy(as_matrix(embeddings))
    model, generator = seeded_model(data.shape[1], bits, hidden, seed)
    initialize(model, data, generator)
    return model.eval()
