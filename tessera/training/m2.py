"""`tessera train m2`: an M2-BERT retriever trained here, on 2 CPU cores, in two stages.

Stage 1, distillation (`distill`). A fresh M2 model (MiniLM's word embeddings, started as a
near-identity bag of them: `init_near_identity`) learns to reproduce the bundled MiniLM's
sentence embeddings of three kinds of text: single corpus documents; short texts (a document's
title, or its first sentence where it has none), because queries are short; and long
sequences made by concatenating random documents up to `max_length` tokens, whose target is
the normalised mean of their members' MiniLM vectors (a long document "means" what its parts
mean). The loss (`DistillationLoss`) is the squared distance to the teacher vector plus an
in-batch contrastive term (each student vector must be nearest its own teacher vector among the
batch's), in batches of similar length (`TokenBudgetBatchSampler`). Why distillation and not
masked-language modelling: MLM from scratch needs far more compute than a CPU has before its
embeddings are of any use for retrieval, while distillation trains the pooled embedding itself,
in the space of a model that already retrieves well, at every length the mixer must learn to
handle. The first recipe (squared distance alone, the published random start) collapsed onto
the teacher's mean vector; the cause was the start, not the loss (a contrastive term from the
published start stayed at chance too; docs/results.md section 8). The contrastive term is kept
because it trains what retrieval needs, telling texts apart; it was not ablated on its own.

Stage 2, retrieval fine-tuning (`finetune`), as the M2-BERT paper's released code does it:
one query per batch by default, and for each (query, positive, negative) the loss
`(cos(q, d+) - 1)^2 + (cos(q, d-) - 0)^2`: no in-batch softmax, so a batch of one works and
memory stays that of a few long documents. Pairs and hard negatives come from the training
machinery every trainer shares (qrels, titles, synthetic queries, ...; BM25 negatives), from
the split's training queries only. Stage 1 alone is the default: measured on Cranfield, 400
stage-2 steps on the default stage-1 model lowered nDCG@10 on its short documents from 0.193 to
0.087 and on the 8k mix task from 0.273 to 0.163 (docs/results.md, section 8).

Both stages run on the shared runner (`runner.py`): resumable checkpoints, progress, bf16
autocast where the CPU has it, atomic publication. `stage="both"` keeps stage 1's model
beside the output as `OUT.distilled` and starts stage 2 from it (a rerun reuses it, unless
it overwrites).
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from tessera.data.corpus import Corpus
from tessera.durable import new_target
from tessera.errors import EncoderError, TesseraError
from tessera.models.m2.model import M2Config
from tessera.training.runner import (
    RECORD,
    Recipe,
    Rows,
    TrainOptions,
    run_training,
    sentence_transformer_classes,
)

STAGES = ("both", "distill", "finetune")
DISTILL_LEARNING_RATE = 1e-4
FINETUNE_LEARNING_RATE = 5e-5
# Rows per batch of typical length; long rows go fewer at a time (TokenBudgetBatchSampler).
DISTILL_BATCH = 16
DISTILL_TEMPERATURE = 0.05  # of the in-batch contrastive term
LONG_ROWS_PER_DOC = 0.25  # long concatenations per sampled document
PICKS = 64  # random draws to fill one long row
DISTILL_DOCS = 1000  # documents sampled for stage 1
MIN_LENGTH = 16  # tokens per sequence: a long row needs room between [CLS] and [SEP]
DISTILL_EPOCHS = 3.0  # 726 steps, 20 minutes on 2 idle cores at 2048 tokens, 6 layers (Cranfield)


class CosineMSELoss(nn.Module):
    """The M2-BERT retrieval loss: squared distance of cos(q, d) to 1 (positive) or 0 (negatives)."""

    def __init__(self, model: Any):
        super().__init__()
        self.model = model

    def forward(self, sentence_features: Iterable[dict[str, torch.Tensor]], labels: Any) -> torch.Tensor:
        query, *documents = [self.model(features)["sentence_embedding"] for features in sentence_features]
        query = nn.functional.normalize(query.float(), dim=-1)
        loss = query.new_zeros(())
        for position, document in enumerate(documents):
            cosine = (query * nn.functional.normalize(document.float(), dim=-1)).sum(-1)
            loss = loss + ((cosine - (1.0 if position == 0 else 0.0)) ** 2).mean()
        return loss


class DistillationLoss(nn.Module):
    """Squared distance of each student vector to its teacher vector, plus the cross-entropy of
    finding its own teacher vector among the batch's (cosine / DISTILL_TEMPERATURE)."""

    def __init__(self, model: Any, temperature: float = DISTILL_TEMPERATURE):
        super().__init__()
        self.model = model
        self.temperature = temperature

    def forward(
        self, sentence_features: Iterable[dict[str, torch.Tensor]], labels: torch.Tensor
    ) -> torch.Tensor:
        (features,) = sentence_features
        student = self.model(features)["sentence_embedding"].float()
        teacher = labels.float()
        distance = ((student - teacher) ** 2).sum(-1).mean()
        if len(student) < 2:
            return distance
        logits = nn.functional.normalize(student, dim=-1) @ nn.functional.normalize(teacher, dim=-1).T
        targets = torch.arange(len(student), device=student.device)
        return distance + nn.functional.cross_entropy(logits / self.temperature, targets)


def short_text(title: str, contents: str) -> str:
    """What a query looks like, from a document: its title, or its first sentence."""
    if title.strip():
        return title.strip()
    first = contents.strip().split("\n")[0]
    end = first.find(". ")
    return first[: end + 1] if end > 0 else first


def distillation_rows(
    corpus: Corpus, max_length: int, seed: int, docs: int = DISTILL_DOCS
) -> tuple[Rows, dict[str, int]]:
    """Rows of three kinds, each with its MiniLM target vector: the `docs` sampled documents;
    their short texts (`short_text`; none where it would repeat the document); and a quarter as
    many long rows as documents (two or more distinct sampled documents concatenated to a length
    drawn uniformly between a quarter of `max_length` tokens and all of it, never past it)."""
    from tessera.models.registry import load_encoder

    rng = random.Random(seed)
    sampled = [doc for doc in corpus if doc.contents.strip()]
    if not sampled:
        raise TesseraError("the corpus has no text to distil from", field="corpus")
    rng.shuffle(sampled)
    sampled = sampled[:docs]
    documents = [doc.contents for doc in sampled]
    shorts = [short_text(doc.title, doc.contents) for doc in sampled]
    shorts = [text for text, document in zip(shorts, documents, strict=True) if text and text != document]
    teacher = load_encoder("minilm")
    targets = teacher.encode_docs(documents)
    short_targets = teacher.encode_docs(shorts) if shorts else np.zeros((0, targets.shape[1]))
    counter = copy.deepcopy(teacher.tokenizer.backend_tokenizer)  # counts only: no truncation
    counter.no_truncation()
    counter.no_padding()
    lengths = [len(e.ids) for e in counter.encode_batch(documents, add_special_tokens=False)]
    rows: Rows = [
        {"text": text, "label": target.tolist()}
        for text, target in zip([*documents, *shorts], [*targets, *short_targets], strict=True)
    ]
    long_rows = round(len(documents) * LONG_ROWS_PER_DOC)
    room = max_length - 2  # [CLS] and [SEP]
    made = 0
    for _ in range(long_rows):
        budget = rng.randint(max(max_length // 4, 1), room)
        members: list[int] = []
        used = 0
        for _ in range(PICKS):  # random documents that fit, until the drawn length is reached
            member = rng.randrange(len(documents))
            if member not in members and used + lengths[member] <= room:
                members.append(member)
                used += lengths[member]
                if used >= budget:
                    break
        if len(members) < 2:
            continue
        mean = targets[members].mean(axis=0)
        rows.append(
            {
                "text": "\n\n".join(documents[m] for m in members),
                "label": (mean / max(float(np.linalg.norm(mean)), 1e-12)).tolist(),
            }
        )
        made += 1
    rng.shuffle(rows)
    return rows, {"documents": len(documents), "short": len(shorts), "long": made}


def _fresh_model(max_length: int, layers: int):
    from tessera.models.m2 import M2Config, build_sentence_transformer, init_from_minilm, init_near_identity

    model = build_sentence_transformer(M2Config(layers=layers), max_seq_length=max_length)
    init_from_minilm(model)
    init_near_identity(model)
    return model


def _m2_folder(base: str | Path, max_length: int):
    from tessera.models.m2 import load_m2_sentence_transformer

    model = load_m2_sentence_transformer(base)
    model.max_seq_length = max_length
    return model


def _length_batches() -> dict[str, Any]:
    from tessera.training.token_batches import TokenBudgetBatchSampler

    return {"batch_sampler": TokenBudgetBatchSampler}


def train_m2(
    dataset: str | Path,
    output: str | Path,
    *,
    stage: str = "distill",
    base: str | Path | None = None,
    layers: int = 6,
    distill_epochs: float | None = None,
    distill_docs: int | None = None,
    **options: Any,
) -> Path:
    """Train an M2-BERT retriever on `dataset` and write it to `output` (see the module docstring).

    `base`: an M2 folder to start from (stage 2 alone needs one; stage 1 starts fresh without).
    `distill_epochs`, `distill_docs`: stage 1's passes and sampled documents (default
    DISTILL_EPOCHS, DISTILL_DOCS).
    `options` are `TrainOptions` fields for stage 2 (and `max_length`, `seed`, `precision`,
    `corpus`, `overwrite` for both); defaults: batch size 1, max_length 2048, lr 5e-5.
    """
    if stage not in STAGES:
        raise TesseraError(f"unknown stage '{stage}' (expected one of {', '.join(STAGES)})", field="stage")
    if stage == "finetune" and base is None:
        raise EncoderError("stage 2 alone starts from a trained M2 folder: give --base", field="base")
    settings = TrainOptions(**{"batch_size": 1, "max_length": 2048, **options})
    _check_sizes(layers, distill_epochs, distill_docs, settings.max_length)
    # before an hour of stage 1, not after: an existing output, or one --overwrite must not replace
    target = new_target(output, settings.overwrite, marker=(RECORD, "a trained model"))
    size = (distill_epochs or DISTILL_EPOCHS, distill_docs or DISTILL_DOCS)
    if stage == "distill":  # stage 1 alone: --max-steps bounds it (with `both`, it bounds stage 2)
        return _distill(dataset, target, base, layers, size, settings, settings.max_steps)
    start = base
    if stage == "both":
        start = target.with_name(f"{target.name}.distilled")
        if settings.overwrite or not start.exists():
            _distill(dataset, start, base, layers, size, settings)
    recipe = Recipe(
        kind="m2",
        base=str(Path(start).expanduser().resolve()),
        learning_rate=FINETUNE_LEARNING_RATE,
        scale=1.0,
        settings={},
        make_model=lambda: _m2_folder(start, settings.max_length),
        make_loss=lambda model, opts, scale: CosineMSELoss(model),
        classes=sentence_transformer_classes,
    )
    return run_training(dataset, target, recipe, settings)


def _check_sizes(layers: int, epochs: float | None, docs: int | None, max_length: int) -> None:
    """The model's and stage 1's sizes, before anything is read (0 would mean a model with no
    layers, or the default silently; a negative document count a slice from the end)."""
    limit = M2Config.max_length
    for name, value, allowed, wanted in [
        ("layers", layers, layers >= 1, "at least 1"),
        ("distill_epochs", epochs, epochs is None or 0 < epochs < math.inf, "a positive finite number"),
        ("distill_docs", docs, docs is None or docs >= 1, "at least 1"),
        ("max_length", max_length, MIN_LENGTH <= max_length <= limit, f"{MIN_LENGTH}..{limit} tokens"),
    ]:
        if not allowed:
            raise TesseraError(f"must be {wanted}, got {value}", field=name)


def _distill(
    dataset: str | Path,
    target: Path,
    base: str | Path | None,
    layers: int,
    size: tuple[float, int],
    settings: TrainOptions,
    max_steps: int | None = None,
) -> Path:
    """Stage 1 into `target` (see the module docstring); `size`: (epochs, documents)."""
    from dataclasses import replace

    stage_options = replace(
        settings,
        epochs=size[0],
        batch_size=DISTILL_BATCH,
        learning_rate=settings.learning_rate if base is not None else DISTILL_LEARNING_RATE,
        pairs=("qrels",),
        negatives="none",
        max_steps=max_steps,
    )
    recipe = Recipe(
        kind="m2-distill",
        base=str(base) if base else f"fresh M2 ({layers} layers) on MiniLM embeddings",
        learning_rate=DISTILL_LEARNING_RATE,
        scale=1.0,
        settings={
            "layers": layers,
            "distill_docs": size[1],
            "init": "near-identity",
            "distill_loss": "distance+contrastive",
        },
        make_model=lambda: (
            _m2_folder(base, settings.max_length) if base else _fresh_model(settings.max_length, layers)
        ),
        make_loss=lambda model, opts, scale: DistillationLoss(model),
        classes=sentence_transformer_classes,
        extra_args=_length_batches(),
        make_rows=lambda opts, corpus: distillation_rows(corpus, opts.max_length, opts.seed, size[1]),
    )
    return run_training(dataset, target, recipe, stage_options)
