"""Fine-tune a dense (one vector per text) encoder with sentence-transformers' own trainer.

`MultipleNegativesRankingLoss` (InfoNCE over cosine similarities: the other rows' positives
and negatives are each query's in-batch negatives) or its cached variant (GradCache), on
(query, positive, hard negative) rows from `runner.py`. The result is a plain
sentence-transformers folder: `tessera index CORPUS --encoder OUT` uses it.

With `freeze_documents`, only a query tower learns: the model becomes a sentence-transformers
`Router` whose document route is the base model, frozen. Documents keep the base model's
embeddings and each step backpropagates through the short queries only, as JPQ trains its
query encoder against fixed document codes; with few judged queries this adapts the query side
without pulling the document space apart. The frozen route runs once per document, in eval mode
(`frozen_route.py`), not once per row with dropout.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from tessera.errors import EncoderError
from tessera.training.bases import model_type, resolve_base, routes_apart
from tessera.training.frozen_route import memoize_route
from tessera.training.runner import (
    Recipe,
    TrainOptions,
    ranking_loss,
    run_training,
    sentence_transformer_classes,
)

LEARNING_RATE = 2e-5  # the pre-trained model is already good; small steps keep it so
SCALE = 20.0  # 1 / temperature for cosine scores in [-1, 1] (sentence-transformers' default)
COLUMN_ROUTES = {"anchor": "query", "positive": "document", "negative": "document"}  # Router routes


def _load(source: str, max_length: int):
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(source)
    except (OSError, ValueError) as exc:
        raise EncoderError(f"cannot load base model '{source}': {exc}", field="base") from None
    model.base_max_seq_length = model.max_seq_length  # what the saved model reads again
    model.max_seq_length = min(model.max_seq_length or max_length, max_length)
    return model


def _base_length(model) -> None:
    """--max-length bounds the training's documents only: the saved model reads as far as its
    base at index time (a frozen document tower then keeps the base's vectors exactly)."""
    if model.base_max_seq_length:
        model.max_seq_length = model.base_max_seq_length


def _query_tower(source: str, max_length: int):
    """`source` twice behind a Router: a trainable query route, a frozen document route."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Router

    query = _load(source, max_length)
    document = copy.deepcopy(query).requires_grad_(False)  # one read of the base, two towers
    router = Router.for_query_document(list(query.children()), list(document.children()))
    model = SentenceTransformer(modules=[router], similarity_fn_name=query.similarity_fn_name)
    model.max_seq_length = query.max_seq_length
    model.base_max_seq_length = query.base_max_seq_length
    memoize_route(router)  # each document encoded once, in eval mode, as the index will
    return model


def _loss(model, options: TrainOptions, scale: float):
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    return ranking_loss(
        options, MultipleNegativesRankingLoss, CachedMultipleNegativesRankingLoss, model, scale=scale
    )


def train_dense(
    dataset: str | Path,
    output: str | Path,
    *,
    base: str | Path | None = None,
    freeze_documents: bool = False,
    **options: Any,
) -> Path:
    """Fine-tune `base` (default: the bundled MiniLM) on `dataset` and write the model to `output`.

    `options` are `TrainOptions` fields (split, pairs, negatives, epochs, batch_size, ...).
    `freeze_documents` trains a query tower only (see the module docstring).
    Running it again after an interruption resumes from the last checkpoint.
    """
    settings = TrainOptions(**options)  # bad options fail before the heavy imports
    source = resolve_base(base)
    if model_type(source) == "MultiVectorEncoder":
        raise EncoderError(f"'{source}' is a multi-vector model: train it with colbert or xtr", field="base")
    routed = routes_apart(source)  # a query tower trained before: both routes train on
    if routed and freeze_documents:
        raise EncoderError(
            f"'{source}' already has a query tower; continue it without --freeze-documents", field="base"
        )
    recipe = Recipe(
        kind="dense",
        base=source,
        learning_rate=LEARNING_RATE,
        scale=SCALE,
        settings={"freeze_documents": True} if freeze_documents else {},
        make_model=lambda: (_query_tower if freeze_documents else _load)(source, settings.max_length),
        make_loss=_loss,
        classes=sentence_transformer_classes,
        extra_args={"router_mapping": COLUMN_ROUTES} if freeze_documents or routed else {},
        before_save=_base_length,
    )
    return run_training(dataset, output, recipe, settings)
