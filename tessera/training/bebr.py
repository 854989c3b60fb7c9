"""Task-agnostic training of a RecurrentBinarizer: embeddings in, embeddings out, no labels.

The binarizer learns to reconstruct each (centred) float embedding and, more to the point for
retrieval, to keep the in-batch similarity structure: every row of the batch acts as a query
against the others, and the binarized-vs-binarized scores must rank neighbours as the float
scores do (a softmax distillation at a low temperature). Both sides are binarized because
search is symmetric (SDC). Batches are large (1024) so that the neighbours a row is ranked
against are close ones; with 256 the objective barely tracked retrieval quality.

Training starts from a strong point (an ITQ rotation and greedy residual signs,
models/bebr_start.py) and refines it; the sign's gradient is tanh's (see `ste_sign`), without
which training made codes worse. Measured on four collections (benchmarks/bebr_settings.py,
docs/results.md section 7: MiniLM, every judged query, three seeds), the refinement keeps no
more of flat search's nDCG@10 than its start: level on Cranfield, CISI and MEDLINE, 0.02 lower
on LISA. So a `bebr:BITS` index is fitted with the start alone (`bebr_start.fit_start`, which
indexing calls): 2 s for LISA's 6,000 documents where 60 epochs took 20-30 s (about an hour per
million documents on one thread). `tessera train bebr` runs the training, which compatible
training (below) needs.

Compatible training (BEBR's backward-compatible upgrade): with `previous` given, the new
binarizer's codes must also be readable by the old binarizer's decoder, so that an index of
old document codes can be searched with new query codes through its own look-up tables. The
old model is frozen; the extra loss scores new codes (decoded by the old decoder) against the
old codes of the same batch with the same similarity objective.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from rich.progress import TextColumn
from torch import nn

from tessera.errors import TesseraError
from tessera.models.bebr import RecurrentBinarizer
from tessera.models.bebr_start import as_matrix, initialize, seeded_model
from tessera.progress import progress_bar

TEMPERATURE = 0.05  # cosine gaps between near neighbours are a few hundredths
TRAIN_EPOCHS = 60  # `tessera train bebr`


def ranking_loss(left: torch.Tensor, right: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Each row of `left @ right.T` must rank the other rows like `target` does (soft top-k).

    The diagonal is left out: an item matching itself says nothing about its neighbours."""
    mask = torch.eye(len(target), dtype=torch.bool)
    scores = (left @ right.T / TEMPERATURE).masked_fill(mask, -1e9)
    target = (target / TEMPERATURE).masked_fill(mask, -1e9)
    return nn.functional.kl_div(
        nn.functional.log_softmax(scores, dim=1),
        nn.functional.log_softmax(target, dim=1),
        log_target=True,
        reduction="batchmean",
    )


def binarizer_loss(model: RecurrentBinarizer, batch: torch.Tensor) -> torch.Tensor:
    """Reconstruction of the centred embedding plus ranking agreement of the scores."""
    signs, approx = model(batch)
    reconstruction = (approx - model.to_code_space(batch)).pow(2).sum(dim=1).mean()
    scoring = model.decode_signs(signs)
    return reconstruction + ranking_loss(scoring, scoring, batch @ batch.T)


def compatibility_loss(
    model: RecurrentBinarizer, previous: RecurrentBinarizer, batch: torch.Tensor, old_batch: torch.Tensor
) -> torch.Tensor:
    """New codes read by the old decoder must mean what old codes mean and rank old codes well."""
    signs, _ = model(batch)
    with torch.no_grad():
        old_signs, _ = previous(old_batch)
        old_docs = previous.decode_signs(old_signs)
        old_target = previous.to_code_space(old_batch)
    read_by_old = previous.decode_signs(signs)
    reconstruction = (read_by_old - previous.offset - old_target).pow(2).sum(dim=1).mean()
    return reconstruction + ranking_loss(read_by_old, old_docs, batch @ batch.T)


def check_epochs(epochs: int, compatible: bool) -> None:
    """0 epochs is the ITQ start alone; compatible training needs at least one."""
    if epochs < 0 or (compatible and epochs == 0):
        raise TesseraError(
            f"epochs must be {'at least 1 for compatible training' if compatible else '>= 0'}, got {epochs}",
            field="epochs",
        )


def _check(
    embeddings: np.ndarray, bits: int, previous: RecurrentBinarizer | None, old: np.ndarray, epochs: int
) -> None:
    check_epochs(epochs, previous is not None)
    if previous is not None and (previous.bits, previous.dim) != (bits, embeddings.shape[1]):
        raise TesseraError(
            f"previous binarizer has {previous.bits} bits x {previous.dim} dims; compatible training "
            f"needs {bits} x {embeddings.shape[1]}",
            field="previous",
        )
    if old.shape[0] != embeddings.shape[0]:
        raise TesseraError(
            f"previous_embeddings has {old.shape[0]} rows, embeddings {embeddings.shape[0]}",
            field="previous_embeddings",
        )


def train_binarizer(
    embeddings: np.ndarray,
    bits: int,
    *,
    epochs: int = TRAIN_EPOCHS,
    batch_size: int = 1024,
    lr: float = 1e-3,
    seed: int = 0,
    hidden: int | None = None,
    previous: RecurrentBinarizer | None = None,
    previous_embeddings: np.ndarray | None = None,
    show_progress: bool = True,
) -> tuple[RecurrentBinarizer, list[float]]:
    """Fit a binarizer to `embeddings`; returns it (in eval mode) and the mean loss of each epoch.

    With `previous`, train compatibly with that (frozen) binarizer's codes. `previous_embeddings`
    are the same items as the old binarizer saw them (an older encoder version); by default the
    embedding space is unchanged and `embeddings` serve for both. Deterministic for a seed on a
    given machine and torch thread count (thread count changes float summation order)."""
    embeddings = as_matrix(embeddings)
    old = embeddings if previous_embeddings is None else as_matrix(previous_embeddings)
    _check(embeddings, bits, previous, old, epochs)
    data, old_data = torch.from_numpy(embeddings), torch.from_numpy(old)
    model, generator = seeded_model(embeddings.shape[1], bits, hidden, seed)
    if previous is not None:  # a frozen copy: the caller's model stays as it was, gradients and all
        previous = copy.deepcopy(previous).eval().requires_grad_(False)
    initialize(model, data, generator, previous, old_data)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = -(-len(embeddings) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    losses: list[float] = []
    model.train()
    with progress_bar(show_progress, TextColumn("loss {task.fields[loss]:.4f}"), transient=True) as bar:
        task = bar.add_task("training binarizer", total=epochs, loss=float("nan")) if bar else None
        for _ in range(epochs):
            total = 0.0
            for rows in torch.randperm(len(data), generator=generator).split(batch_size):
                if len(rows) < 2:
                    continue
                loss = binarizer_loss(model, data[rows])
                if previous is not None:
                    loss = loss + compatibility_loss(model, previous, data[rows], old_data[rows])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                total += loss.item() * len(rows)
            losses.append(total / len(data))
            if bar:
                bar.update(task, advance=1, loss=losses[-1])
    return model.eval(), losses
