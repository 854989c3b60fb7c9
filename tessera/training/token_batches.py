"""Batches of texts of similar length under a padded-size budget, for rows of mixed lengths.

A batch is padded to its longest text, so one 2,000-token row among sixteen 200-token rows
costs as much as sixteen long rows. Grouping rows of similar length (a shuffled window at a
time, sorted by length, then cut greedily) keeps the padded size of every batch near
`batch_size` rows of the mean length: short rows travel sixteen at a time, long
ones one or two at a time, and the order of batches is shuffled again so lengths stay mixed
over the run. Deterministic for a seed and epoch, so a resumed run sees the same batches.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from sentence_transformers.base.sampler import DefaultBatchSampler

WINDOW_BATCHES = 64  # rows are sorted by length within windows of this many batches


class TokenBudgetBatchSampler(DefaultBatchSampler):
    """Batches of at most `batch_size` rows whose longest text times their count stays within
    `batch_size` times the mean text length (characters stand in for tokens). Every row is
    used: a short batch is never dropped (`drop_last` is accepted for the trainer's call only)."""

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool = False,
        valid_label_columns: list[str] | None = None,
        generator: Any = None,
        seed: int = 0,
        text_column: str = "text",
    ) -> None:
        super().__init__(dataset, batch_size, drop_last, valid_label_columns, generator, seed)
        self.lengths = [max(len(text), 1) for text in dataset[text_column]]
        self.budget = batch_size * sum(self.lengths) / max(len(self.lengths), 1)
        self._made: tuple[int, list[list[int]]] = (-1, [])

    def batches(self) -> list[list[int]]:
        """This epoch's batches (row indices), made once per epoch."""
        if self._made[0] != self.epoch:
            self._made = (self.epoch, self._make())
        return self._made[1]

    def _make(self) -> list[list[int]]:
        rng = random.Random(f"{self.seed}:{self.epoch}")
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        window = WINDOW_BATCHES * self.batch_size
        batches: list[list[int]] = []
        for start in range(0, len(order), window):
            batch: list[int] = []
            # ascending lengths: the row being added is always the batch's longest
            for row in sorted(order[start : start + window], key=self.lengths.__getitem__):
                full = len(batch) == self.batch_size
                if batch and (full or self.lengths[row] * (len(batch) + 1) > self.budget):
                    batches.append(batch)
                    batch = []
                batch.append(row)
            if batch:
                batches.append(batch)
        rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches()

    def __len__(self) -> int:
        return len(self.batches())
