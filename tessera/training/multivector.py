"""Train a multi-vector (late-interaction) encoder: ColBERT (MaxSim) or XTR scoring.

sentence-transformers' `MultiVectorEncoderTrainer` and `MultiVectorMultipleNegativesRankingLoss`
(or its cached variant) on the rows of `runner.py`, the loss scoring with MaxSim for ColBERT
or `XTRScores(top_k)` for XTR. XTR trains token retrieval itself: each query token keeps only
its top_k most similar tokens among all the batch's document tokens, and a document is scored
only on tokens that were retrieved, as at search time (Lee et al., "Rethinking the Role of
Token Retrieval in Multi-Vector Retrieval", NeurIPS 2023; the paper's k_train is 32-320).

The starting point is a backbone (default: the bundled MiniLM) given a fresh projection by
`new_multivector_model`, or a saved multi-vector folder, which trains on. The output loads
with `MultiVectorEncoder(OUT)` and indexes as `--encoder colbert:OUT` or `xtr:OUT`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tessera.errors import EncoderError, TesseraError
from tessera.models.multivector import SCORINGS, Scoring, new_multivector_model
from tessera.training.bases import model_type, resolve_base
from tessera.training.runner import Recipe, TrainOptions, ranking_loss, run_training

LEARNING_RATE = 5e-5  # higher than dense: the token projection starts random
# MaxSim sums ~query_length cosines (scores up to 32): ST's scale 1. XTR averages the retrieved
# tokens' cosines (scores in [-1, 1]), like dense cosine: the dense scale.
SCALES = {"colbert": 1.0, "xtr": 20.0}
TOP_K = 256


def _load(source: str, continuing: bool, options: TrainOptions):
    if not continuing:
        # the model's own document length stays its default: --max-length cuts training documents
        # only (extra_args below); saved, it cut every document indexed later to that length
        return new_multivector_model(source, seed=options.seed)
    from sentence_transformers import MultiVectorEncoder

    try:
        return MultiVectorEncoder(source)
    except (OSError, ValueError) as exc:
        raise EncoderError(f"cannot load multi-vector model '{source}': {exc}", field="base") from None


def _loss_maker(scoring: Scoring, top_k: int):
    def make(model, options: TrainOptions, scale: float):
        from sentence_transformers.multi_vector_encoder.losses import (
            CachedMultiVectorMultipleNegativesRankingLoss,
            MultiVectorMultipleNegativesRankingLoss,
        )
        from sentence_transformers.multi_vector_encoder.scoring import XTRScores, colbert_scores

        similarity = XTRScores(top_k=top_k) if scoring == "xtr" else colbert_scores
        plain, cached = MultiVectorMultipleNegativesRankingLoss, CachedMultiVectorMultipleNegativesRankingLoss
        return ranking_loss(options, plain, cached, model, scale=scale, similarity_fct=similarity)

    return make


def _classes() -> tuple[type, type]:
    from sentence_transformers import MultiVectorEncoderTrainer, MultiVectorEncoderTrainingArguments

    return MultiVectorEncoderTrainingArguments, MultiVectorEncoderTrainer


def train_multivector(
    dataset: str | Path,
    output: str | Path,
    *,
    scoring: Scoring = "colbert",
    base: str | Path | None = None,
    top_k: int = TOP_K,
    **options: Any,
) -> Path:
    """Train a ColBERT or XTR model on `dataset` and write it to `output`.

    `top_k` is XTR's k_train (token matches kept per query token in a batch); `options` are
    `TrainOptions` fields. Running it again after an interruption resumes from the last checkpoint.
    """
    if scoring not in SCORINGS:
        raise TesseraError(f"unknown scoring '{scoring}' (expected {' or '.join(SCORINGS)})", field="scoring")
    if top_k < 1:
        raise TesseraError("must be at least 1", field="top_k")
    settings = TrainOptions(**options)
    source = resolve_base(base)
    continuing = model_type(source) == "MultiVectorEncoder"
    recipe = Recipe(
        kind=scoring,
        base=source,
        learning_rate=LEARNING_RATE,
        scale=SCALES[scoring],
        settings={"top_k": top_k} if scoring == "xtr" else {},
        make_model=lambda: _load(source, continuing, settings),
        make_loss=_loss_maker(scoring, top_k),
        classes=_classes,
        # Queries keep their fixed, expanded length; documents are cut for training only.
        extra_args={"max_length": {"document": settings.max_length}},
    )
    return run_training(dataset, output, recipe, settings)
