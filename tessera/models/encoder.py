"""The contract every encoder keeps (BM25, which is no encoder, has its settings in bm25.py)."""

from __future__ import annotations

from collections.abc import Sequence
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
