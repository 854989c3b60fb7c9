"""TokenBudgetBatchSampler: every row once per epoch, padded size within budget, reproducible."""

from __future__ import annotations

from datasets import Dataset

from tessera.training.token_batches import TokenBudgetBatchSampler


def _sampler(texts: list[str], seed: int = 0, batch_size: int = 4) -> TokenBudgetBatchSampler:
    return TokenBudgetBatchSampler(Dataset.from_list([{"text": t} for t in texts]), batch_size, seed=seed)


TEXTS = ["x" * 10] * 40 + ["y" * 200] * 6 + ["z" * 30] * 20


def test_every_row_once_and_padded_size_within_budget() -> None:
    sampler = _sampler(TEXTS)
    batches = list(sampler)
    assert sorted(row for batch in batches for row in batch) == list(range(len(TEXTS)))
    assert len(sampler) == len(batches)
    budget = 4 * sum(len(t) for t in TEXTS) / len(TEXTS)  # 4 rows of the mean length: 122 chars
    for batch in batches:
        longest = max(len(TEXTS[row]) for row in batch)
        assert len(batch) <= 4
        assert len(batch) == 1 or longest * len(batch) <= budget
    long_batches = [b for b in batches if any(len(TEXTS[row]) == 200 for row in b)]
    assert all(len(b) == 1 for b in long_batches) and len(long_batches) == 6  # over budget alone
    assert sum(len(b) == 4 for b in batches) >= 10  # short rows travel four at a time


def test_same_seed_and_epoch_same_batches_else_different() -> None:
    first, again, other = _sampler(TEXTS), _sampler(TEXTS), _sampler(TEXTS, seed=1)
    assert list(first) == list(again)
    assert list(first) != list(other)
    again.set_epoch(1)
    assert list(first) != list(again)
