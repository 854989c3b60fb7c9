"""Dense dual encoder: any sentence-transformers model, normalized for inner-product search."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tessera.models.loading import load_sentence_transformers


class DenseEncoder:
    """One vector per text; cosine similarity as inner product of unit vectors."""

    multi_vector = False

    def __init__(self, spec: str, model_path: str | Path, batch_size: int = 64, device: str | None = None):
        from sentence_transformers import SentenceTransformer

        self.model = load_sentence_transformers(
            SentenceTransformer, model_path, device, "sentence-transformers model"
        )
        self.spec = spec
        self.batch_size = batch_size
        self.dim = int(self.model.get_embedding_dimension())

    @property
    def tokenizer(self):
        """The Hugging Face tokenizer, for cutting long documents into passages that fit."""
        return self.model.tokenizer

    @property
    def max_tokens(self) -> int:
        """The longest input (special tokens included) the model reads before truncating."""
        return int(self.model.max_seq_length)

    def _encode(self, method, texts: Sequence[str]) -> np.ndarray:
        vectors = method(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(self.model.encode_query, texts)

    def encode_docs(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(self.model.encode_document, texts)
