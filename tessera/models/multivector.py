"""Multi-vector (late-interaction) encoders: one vector per token, ColBERT or XTR scoring.

Built on sentence-transformers' `MultiVectorEncoder`: a BERT-style backbone, a linear
projection to a small token dimension, L2 normalisation, and a mask that drops
punctuation on the document side. Queries get ColBERT's query augmentation: they are
padded to a fixed length with [MASK] tokens that are attended to and scored, which lets
the model add soft expansion terms. ColBERT's marker tokens ([unused0] for queries,
[unused1] for documents) tell the shared backbone which side it is encoding.

The spec `colbert:PATH` or `xtr:PATH` names a saved model folder; the prefix says which
scoring the index uses (the weights are the same kind either way).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from tessera.errors import EncoderError
from tessera.models.loading import load_sentence_transformers
from tessera.models.runtimes import DEFAULT_RUNTIME
from tessera.models.runtimes.apply import apply_runtime

if TYPE_CHECKING:
    from sentence_transformers import MultiVectorEncoder

Scoring = Literal["colbert", "xtr"]
SCORINGS: tuple[Scoring, ...] = ("colbert", "xtr")
QUERY_MARKER, DOCUMENT_MARKER = "[unused0]", "[unused1]"
TOKEN_DIM = 128


def new_multivector_model(
    base: str | Path,
    dim: int = TOKEN_DIM,
    query_length: int = 32,
    document_length: int = 256,
    seed: int = 0,
    device: str | None = None,
) -> MultiVectorEncoder:
    """A fresh multi-vector model on a BERT-style backbone (a folder or hub name).

    The projection is random (seeded) until trained; the backbone keeps its weights.
    """
    import torch
    from sentence_transformers import MultiVectorEncoder
    from sentence_transformers.base.modules import Dense, Normalize, Transformer
    from sentence_transformers.multi_vector_encoder.modules import MultiVectorMask

    transformer = Transformer(
        str(base),
        query_length=query_length,
        document_length=document_length,
        query_expansion={"strategy": "fixed", "attend": True, "length": query_length},
    )
    # The markers exist in BERT's vocabulary; registering them keeps each one a single token.
    transformer.tokenizer.add_special_tokens(
        {"additional_special_tokens": [QUERY_MARKER, DOCUMENT_MARKER]},
        replace_extra_special_tokens=False,
    )
    generator = torch.Generator().manual_seed(seed)
    width = transformer.get_embedding_dimension()
    projection = torch.empty(dim, width)
    torch.nn.init.xavier_uniform_(projection, generator=generator)
    return MultiVectorEncoder(
        modules=[
            transformer,
            Dense(
                width,
                dim,
                bias=False,
                activation_function=torch.nn.Identity(),
                init_weight=projection,
                module_input_name="token_embeddings",
            ),
            Normalize(module_input_name="token_embeddings"),
            MultiVectorMask(skiplist_words=list(string.punctuation)),
        ],
        prompts={"query": f"{QUERY_MARKER} ", "document": f"{DOCUMENT_MARKER} "},
        device=device,
    )


def parse_multivector_spec(spec: str) -> tuple[Scoring, str] | None:
    """('colbert' | 'xtr', path) for a multi-vector spec, None for any other spec."""
    scoring, sep, path = spec.partition(":")
    if not sep or scoring not in SCORINGS:
        return None
    if not path:
        raise EncoderError(f"'{spec}' names no model folder (expected {scoring}:PATH)", field="encoder")
    return scoring, path  # type: ignore[return-value]


class MultiVectorTextEncoder:
    """Token vectors for queries and documents, as float32 arrays of shape (tokens, dim).

    Document outputs hold only the scored tokens (no padding, no punctuation); query
    outputs always hold `query_length` vectors (real tokens plus augmentation).
    """

    multi_vector = True

    def __init__(
        self,
        spec: str,
        model_path: str | Path,
        scoring: Scoring,
        batch_size: int = 32,
        device: str | None = None,
        runtime: str = DEFAULT_RUNTIME,
    ):
        from sentence_transformers import MultiVectorEncoder

        self.model = load_sentence_transformers(MultiVectorEncoder, model_path, device, "multi-vector model")
        self.runtime_context = apply_runtime(self.model, runtime, exported=False)
        self.spec = spec
        self.scoring = scoring
        self.batch_size = batch_size
        self.dim = int(self.model.get_embedding_dimension())

    def _encode(self, method, texts: Sequence[str]) -> list[np.ndarray]:
        with self.runtime_context():
            vectors = method(
                list(texts), batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=False
            )
        return [np.ascontiguousarray(v.float().cpu().numpy(), dtype=np.float32) for v in vectors]

    def encode_queries(self, texts: Sequence[str]) -> list[np.ndarray]:
        return self._encode(self.model.encode_query, texts)

    def encode_docs(self, texts: Sequence[str]) -> list[np.ndarray]:
        return self._encode(self.model.encode_document, texts)
