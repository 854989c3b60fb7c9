"""Train a cross-encoder reranker: query and passage read together, one relevance score a pair.

No cross-encoder checkpoint can be had offline, so the bundled MiniLM's body is given a fresh
one-logit head (`CrossEncoder(base, num_labels=1)`, sentence-transformers converts the folder)
and trained with sentence-transformers' `CrossEncoderTrainer` on the rows of `runner.py`:
`MultipleNegativesRankingLoss` for cross-encoders, where each query's positive competes with
its mined hard negative and `num_negatives` other rows' passages, all scored jointly with the
query (a softmax over sigmoid logits times `scale`). The cached variant (GradCache) takes big
batches in bounded memory. The result is a sentence-transformers CrossEncoder folder:
`--rerank cross-encoder:OUT` on `search`, `eval`, `rag`, suite systems and the service.

Measured (docs/results.md section 21): trained on one collection's training split (a few
thousand rows) it fits its training queries but ranks test queries below the BM25 it reranks;
it is for users with far more pairs, or a CrossEncoder folder to continue from.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tessera.errors import EncoderError, TesseraError
from tessera.training.bases import model_type, resolve_base
from tessera.training.runner import Recipe, TrainOptions, ranking_loss, run_training

# A new head starts with every pair's logit near 0 and reads the pooled [CLS] vector of a body
# trained for mean-pooled embeddings, so at sentence-transformers' reranker rates (2e-5, made for
# hundreds of thousands of pairs) a collection's hundred or so steps leave its logits level. On
# Cranfield's training rows, 20 steps (`tessera train cross-encoder --dataset
# ../shared/data/cranfield-beir -o OUT --max-steps 20 [--lr 2e-5 --head-lr 1e-3]`): mean loss
# over steps 11-20 1.087 at 2e-5 / 1e-3 (ln 3 = 1.099 is chance), 0.979 at these defaults
# (training loss only; no test query read). A continued CrossEncoder keeps one rate.
LEARNING_RATE = 1e-4
HEAD_LEARNING_RATE = 1e-2
HEAD = r"\.classifier\."  # the sequence-classification head of BERT-family models
SCALE = 10.0  # sentence-transformers' default for the cross-encoder MNRL (sigmoid logits * 10)
# Other rows' passages each query is scored against besides its hard negative. The loss's own
# default is 4; each costs one more forward and backward pass a row, and on two CPU cores one
# keeps an epoch over a few thousand rows within minutes (a step of 32 rows reads 96 pairs).
NUM_NEGATIVES = 1


def _load(source: str, max_length: int, seed: int, new_head: bool):
    """The base with a one-logit head, drawn from `seed` (a new head's start is part of the run)."""
    from sentence_transformers import CrossEncoder
    from transformers import set_seed

    set_seed(seed)
    try:
        model = CrossEncoder(source, num_labels=1, max_length=max_length)
    except (OSError, ValueError) as exc:
        raise EncoderError(f"cannot load base model '{source}': {exc}", field="base") from None
    if new_head and not any(re.search(HEAD, name) for name, _ in model.named_parameters()):
        raise EncoderError(
            f"'{source}' gets a classification head not named 'classifier'; start from a BERT-family "
            "model, or from a CrossEncoder folder",
            field="base",
        )
    return model


def _loss_maker(num_negatives: int):
    def make(model, options: TrainOptions, scale: float):
        from sentence_transformers.cross_encoder.losses import (
            CachedMultipleNegativesRankingLoss,
            MultipleNegativesRankingLoss,
        )

        plain, cached = MultipleNegativesRankingLoss, CachedMultipleNegativesRankingLoss
        return ranking_loss(options, plain, cached, model, num_negatives=num_negatives, scale=scale)

    return make


def _classes() -> tuple[type, type]:
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments

    return CrossEncoderTrainingArguments, CrossEncoderTrainer


def train_cross_encoder(
    dataset: str | Path,
    output: str | Path,
    *,
    base: str | Path | None = None,
    num_negatives: int = NUM_NEGATIVES,
    head_learning_rate: float = HEAD_LEARNING_RATE,
    **options: Any,
) -> Path:
    """Train a cross-encoder on `dataset` (default start: the bundled MiniLM) and write it to `output`.

    `num_negatives` is how many of the batch's other passages each query is scored against
    besides its mined hard negative; `head_learning_rate` is a new head's (the body's is
    `learning_rate`, default 1e-4); `options` are `TrainOptions` fields (pairs, negatives,
    epochs, batch_size, ...). Running it again after an interruption resumes from the last
    checkpoint.
    """
    if isinstance(num_negatives, bool) or not isinstance(num_negatives, int) or num_negatives < 1:
        # the loss samples them; with none it would learn from one hard negative a query
        raise TesseraError("must be a whole number >= 1", field="num_negatives")
    if not head_learning_rate > 0:
        raise TesseraError("must be positive", field="head_learning_rate")
    settings = TrainOptions(**options)
    source = resolve_base(base)
    kind = model_type(source)
    if kind not in (None, "SentenceTransformer", "CrossEncoder"):
        raise EncoderError(
            f"'{source}' is a {kind} folder; a cross-encoder starts from a text encoder or a CrossEncoder",
            field="base",
        )
    new_head = kind != "CrossEncoder"
    recipe = Recipe(
        kind="cross-encoder",
        base=source,
        learning_rate=LEARNING_RATE,
        scale=SCALE,
        settings={
            "num_negatives": num_negatives,
            "head_learning_rate": head_learning_rate if new_head else None,
        },
        make_model=lambda: _load(source, settings.max_length, settings.seed, new_head),
        make_loss=_loss_maker(num_negatives),
        classes=_classes,
        extra_args={"learning_rate_mapping": {HEAD: head_learning_rate}} if new_head else {},
    )
    return run_training(dataset, output, recipe, settings)
