"""Dense dual encoder: any sentence-transformers model, normalized for inner-product search."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tessera.models.encoder import blank_as_zero
from tessera.models.loading import load_sentence_transformers
from tessera.models.runtimes import DEFAULT_RUNTIME, EXPORTED
from tessera.models.runtimes.apply import apply_runtime

# Texts per forward pass: sentence-transformers' own default. On two AVX512/AMX cores, 64 encoded
# Cranfield 13% slower in fp32 and 19% slower under bf16 (more padding per pass, larger
# activations out of cache); the query-time encoders of runtimes/ batch the same way.
BATCH_SIZE = 32


class DenseEncoder:
    """One vector per text; cosine similarity as inner product of unit vectors.

    `runtime` (`models/runtimes/`) picks the engine the transformer runs on; exported runtimes
    run on the CPU.
    """

    multi_vector = False

    def __init__(
        self,
        spec: str,
        model_path: str | Path,
        batch_size: int = BATCH_SIZE,
        device: str | None = None,
        runtime: str = DEFAULT_RUNTIME,
    ):
        from sentence_transformers import SentenceTransformer

        if runtime in EXPORTED:
            device = "cpu"
        self.model = load_sentence_transformers(
            SentenceTransformer, model_path, device, "sentence-transformers model"
        )
        folder = Path(model_path) if Path(model_path).is_dir() else None
        self.runtime_context = apply_runtime(self.model, runtime, folder=folder)
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
        def encode(wanted: list[str]) -> np.ndarray:
            with self.runtime_context():
                vectors = method(
                    wanted,
                    batch_size=self.batch_size,
                    normalize_embeddings=True,
                    convert_to_tensor=True,
                    show_progress_bar=False,
                )
            return vectors.float().cpu().numpy()

        return blank_as_zero(texts, self.dim, encode)  # contiguous float32

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(self.model.encode_query, texts)

    def encode_docs(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(self.model.encode_document, texts)
