"""The contract every second-stage reranker keeps, and the text of a hit it reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from tessera.retrieval.hits import Hit


@runtime_checkable
class Reranker(Protocol):
    """Scores one query against its candidates' texts; higher is better."""

    spec: str

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray: ...


def hit_text(hit: Hit) -> str:
    """What a reranker reads: a chunked index's best passage (its text, or cut from the document
    by its offsets), else title and body (the text the encoders indexed, `Document.contents`)."""
    body = hit.text or ""
    if hit.passage:
        body = hit.passage
    elif hit.offsets and body:
        body = body[hit.offsets[0] : hit.offsets[1]]
    return f"{hit.title} {body}" if hit.title else body
