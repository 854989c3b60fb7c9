"""The contract every encoder keeps, and the lexical model that stands beside them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class BM25:
    """Lexical scoring parameters; Lucene (through pyserini) does the analysis and scoring."""

    k1: float = 0.9
    b: float = 0.4

    @property
    def spec(self) -> str:
        return f"bm25:k1={self.k1:g},b={self.b:g}"
