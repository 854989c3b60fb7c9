"""Rerank with a sentence-transformers CrossEncoder (query and passage read together), the
usual second stage of sentence-transformers and LlamaIndex users. No cross-encoder weights ship
with Tessera: this loads a folder, or a hub name where the network allows it
(`cross-encoder/ms-marco-MiniLM-L6-v2`, `BAAI/bge-reranker-base`, ...)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tessera import config
from tessera.errors import EncoderError
from tessera.models.loading import why_not

BATCH_SIZE = 32


class CrossEncoderReranker:
    def __init__(self, model: str, spec: str, batch_size: int = BATCH_SIZE, device: str | None = None):
        from sentence_transformers import CrossEncoder

        config.apply_offline_defaults()
        try:
            self.model = CrossEncoder(model, device=device or "cpu")
        except (OSError, ValueError) as exc:
            raise EncoderError(
                f"cannot load cross-encoder '{model}': {why_not(model, exc)}", field="rerank"
            ) from None
        self.spec = spec
        self.batch_size = batch_size

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=np.float32)
        scores = self.model.predict(
            [(query, text) for text in texts], batch_size=self.batch_size, show_progress_bar=False
        )
        scores = np.asarray(scores, dtype=np.float32)
        if scores.ndim > 1 and scores.shape[1] != 1:
            raise EncoderError(
                f"cross-encoder '{self.spec}' gives {scores.shape[1]} scores a pair (a classifier); "
                "a reranker needs one (num_labels=1)",
                field="rerank",
            )
        return scores.reshape(len(texts))
