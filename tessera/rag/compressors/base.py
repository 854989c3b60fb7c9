"""The compressor contract and the tools every compressor shares."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from tessera.errors import TesseraError, whole_number
from tessera.rag.passages import Block, Passage
from tessera.rag.tokens import TokenCounter

if TYPE_CHECKING:
    from tessera.rag.generators import Generator

Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> unit vectors, one row each


@dataclass
class Tools:
    """What compressors work with: one tokenizer for budgets, one sentence embedder, maybe an LLM."""

    tokens: TokenCounter
    embed_docs: Embed
    embed_queries: Embed
    generator: Generator | None = None


class Compressor(Protocol):
    """Turns the retrieved passages (best first) into fewer context tokens, blocks best first.

    `budget` caps the context tokens (the blocks' text, in `tools.tokens`); None lets the method
    use its own default."""

    name: str

    def compress(self, question: str, passages: Sequence[Passage], budget: int | None) -> list[Block]: ...


def shares(total: int, weights: Sequence[float]) -> list[int]:
    """Split a token budget in proportion to weights (at least 1 each, sum <= total when possible)."""
    mass = float(sum(weights)) or 1.0
    return [max(1, math.floor(total * w / mass)) for w in weights]


def check_budget(budget: int | None) -> None:
    """A token budget is a whole number >= 1 (None: the compressor's own ratio); 0 or less would
    leave no context at all, silently."""
    if budget is not None and whole_number(budget, "budget") < 1:  # 1.5 was "must be at least 1"
        raise TesseraError(f"budget must be at least 1 token, got {budget!r}", field="budget")


def check_option(name: str, value: float | None, allowed: bool, wanted: str) -> None:
    """A compressor option's range, checked when the compressor is made (its type is checked by
    `make_compressor`): a ratio of 0 left a few characters of context, a cluster count of 0 an
    assertion inside faiss."""
    if not allowed:
        raise TesseraError(f"option '{name}' must be {wanted}, got {value!r}", field="option")


def check_ratio(name: str, ratio: float | None) -> None:
    check_option(name, ratio, ratio is None or 0 < ratio <= 1, "above 0 and at most 1")


def budget_and_lengths(
    tools: Tools, passages: Sequence[Passage], budget: int | None, ratio: float | None
) -> tuple[int | None, list[int]]:
    """Each passage's tokens, and the budget: the given one, else `ratio` of the passages' tokens."""
    lengths = [tools.tokens.count(p.flat_text) for p in passages]
    if budget is None and ratio is not None:
        budget = math.ceil(ratio * sum(lengths))
    return budget, lengths
