"""The contract every encoder keeps (BM25, which is no encoder, has its settings in bm25.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Encoder(Protocol):
    """Turns text into vectors. `spec` round-trips through the index manifest."""

    spec: str
    dim: int
    multi_vector: bool

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_docs(self, texts: Sequence[str]) -> np.ndarray: ...


def blank_as_zero(texts: Sequence[str], dim: int, encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """`encode`'s unit vectors for the texts with words in them and the zero vector for a blank
    one (a document with neither title nor text), which scores 0 against every query: MiniLM's
    vector of an empty text is a little like everything (cosine 0.29 to "wings", above most real
    documents), so an empty document ranked high for any query."""
    vectors = np.zeros((len(texts), dim), dtype=np.float32)
    wanted = [i for i, text in enumerate(texts) if text.strip()]
    if wanted:
        vectors[wanted] = encode([texts[i] for i in wanted])
    return vectors
