"""The one training path of every contrastive encoder (dense, ColBERT, XTR).

dataset + corpus -> examples (qrels / titles / crops) -> mined hard negatives ->
(anchor, positive[, negative]) rows -> a sentence-transformers trainer -> a model folder.

A run works in `OUT.tmp-train/`, beside the output: the rows it trains on
(`examples.jsonl`), what they were made from (`prepared.json`), and the trainer's
checkpoints. Running the same command again resumes from the last checkpoint with the
same rows; different options are refused rather than mixed into old checkpoints. The
model is saved into `OUT.tmp-<pid>` and renamed onto `OUT`, so `OUT` is absent or complete.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from tessera import config
from tessera.data.corpus import Corpus
from tessera.data.datasets import EvalDataset
from tessera.durable import new_target, write_text_atomic
from tessera.errors import TesseraError
from tessera.indexing import staging
from tessera.indexing.manifest import utc_now
from tessera.training.examples import build_examples, dataset_corpus, judged_split, parse_sources
from tessera.training.negatives import check_negatives, document_texts, mine_negatives, negatives_index
from tessera.training.synthetic import SyntheticSettings, check_synthetic_spec

PREPARED, EXAMPLES, RECORD = "prepared.json", "examples.jsonl", "training.json"
Rows = list[dict[str, str]]
LOSSES = ("mnrl", "cached")
PRECISIONS = ("auto", "bf16", "fp32")


@dataclass(frozen=True)
class TrainOptions:
    """Options every contrastive trainer shares; defaults suit a Cranfield-size collection."""

    split: str = "train"
    corpus: str | None = None  # default: the dataset's own documents
    pairs: str | Sequence[str] = ("qrels", "titles")  # some of qrels, titles, crop, ict, synthetic
    synthetic: str = "local"  # the synthetic source's generator spec, or a synth-queries file
    synthetic_docs: int | None = 300  # documents the synthetic source asks (a fixed hash sample)
    synthetic_top_k: int = 10  # round trip: a query's document must be in the filter's top k
    synthetic_filter: str = "bm25"  # the round-trip retriever (as `negatives`), or none
    negatives: str = "bm25"  # bm25[:k1=..,b=..] | minilm | an index directory | none
    negative_skip: int = 0  # ranks skipped above the negative window
    negative_depth: int = 30  # ranks in the window
    loss: str = "mnrl"  # or "cached" (GradCache: large batches in bounded memory)
    mini_batch_size: int = 16  # rows per forward pass of the cached loss
    epochs: float = 1.0
    max_steps: int | None = None  # stop after this many optimizer steps (overrides epochs)
    batch_size: int = 32
    learning_rate: float | None = None  # default: the trainer kind's
    warmup: float = 0.1  # fraction of the steps with a rising learning rate
    scale: float | None = None  # 1 / temperature of the loss; default: the trainer kind's
    max_length: int = 256  # tokens per document
    precision: str = "auto"  # bf16 autocast where the hardware multiplies bf16 natively, else fp32
    seed: int = 0
    save_steps: int = 20  # a checkpoint every ~10 CPU minutes at the default batch size
    logging_steps: int = 10
    overwrite: bool = False
    show_progress: bool = True
    callbacks: Sequence[Any] = field(default=(), compare=False)  # extra transformers TrainerCallbacks

    def __post_init__(self) -> None:
        _validate(self)


@dataclass
class Recipe:
    """What one kind of encoder adds to the shared path."""

    kind: str  # dense | colbert | xtr | cross-encoder | m2 | m2-distill
    base: str  # the starting model, resolved (part of the fingerprint)
    learning_rate: float
    scale: float
    settings: dict[str, Any]  # other values that change the result (e.g. XTR's top_k)
    make_model: Callable[[], Any]
    make_loss: Callable[[Any, TrainOptions, float], Any]  # (model, options, scale) -> loss
    classes: Callable[[], tuple[type, type]]  # (training arguments, trainer), imported when training
    extra_args: dict[str, Any] = field(default_factory=dict)  # training arguments over the shared ones
    # Rows that are not (query, positive[, negative]) pairs (M2 distillation): (options, corpus) ->
    # (rows, counts). Such a recipe reads no judgments.
    make_rows: Callable[[TrainOptions, Corpus], tuple[Rows, dict[str, int]]] | None = None
    # What the trained model takes back before it is saved (the base's input length, which
    # --max-length shortened for training only).
    before_save: Callable[[Any], None] | None = None


def sentence_transformer_classes() -> tuple[type, type]:
    """The single-vector trainer's classes, imported only when a training starts."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    return SentenceTransformerTrainingArguments, SentenceTransformerTrainer


def _validate(options: TrainOptions) -> None:
    parse_sources(options.pairs)
    if options.loss not in LOSSES:
        raise TesseraError(f"unknown loss '{options.loss}' (expected {' or '.join(LOSSES)})", field="loss")
    for name in ("batch_size", "mini_batch_size", "max_length", "save_steps", "logging_steps"):
        if getattr(options, name) < 1:
            raise TesseraError("must be at least 1", field=name)
    SyntheticSettings(options.synthetic, options.synthetic_docs, options.synthetic_top_k)  # checks them
    if not 0 < options.epochs < math.inf:
        raise TesseraError(f"must be a positive finite number, got {options.epochs}", field="epochs")
    if options.max_steps is not None and options.max_steps < 1:
        raise TesseraError(f"must be at least 1, got {options.max_steps}", field="max_steps")
    for name in ("learning_rate", "scale", "warmup"):
        value = getattr(options, name)
        if value is not None and not (0 <= value <= 1 if name == "warmup" else 0 < value < math.inf):
            # nan fails every comparison: refused here, not as a traceback deep in the trainer
            wanted = "in [0, 1]" if name == "warmup" else "a positive finite number"
            raise TesseraError(f"must be {wanted}, got {value}", field=name)
    if options.precision not in PRECISIONS:
        raise TesseraError(f"unknown precision (expected one of {', '.join(PRECISIONS)})", field="precision")


def ranking_loss(options: TrainOptions, plain: type, cached: type, model: Any, **settings: Any) -> Any:
    """The loss `options.loss` names: `plain` (an MNRL class), or `cached`, its GradCache variant,
    at the options' mini-batch size; `settings` go to either (scale, similarity, negatives)."""
    if options.loss == "cached":
        return cached(model, mini_batch_size=options.mini_batch_size, **settings)
    return plain(model, **settings)


def use_bf16(precision: str) -> bool:
    """Whether to train under bf16 autocast: asked for, or `auto` on hardware with native bf16
    (CUDA that supports it; CPUs with AVX512-BF16/AMX, where bf16 matmuls run ~4x faster).
    Weights and optimizer state stay fp32 either way."""
    import torch

    if precision != "auto":
        return precision == "bf16"
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


@contextmanager
def _locked(work: Path) -> Iterator[None]:
    work.mkdir(parents=True, exist_ok=True)
    with (work / ".lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TesseraError("another training of this output is running", file=work) from None
        yield


def last_complete_checkpoint(work: Path) -> str | None:
    """The newest checkpoint the trainer finished writing (its `trainer_state.json`, written
    last, is there); a checkpoint cut off mid-write by a kill is deleted, not resumed from."""
    found = sorted(
        (int(path.name.rsplit("-", 1)[1]), path)
        for path in work.glob("checkpoint-*")
        if path.is_dir() and path.name.rsplit("-", 1)[1].isdigit()
    )
    for _, path in reversed(found):
        if (path / "trainer_state.json").is_file():
            return str(path)
        shutil.rmtree(path)
    return None


def _make_rows(
    options: TrainOptions, corpus: Corpus, data: EvalDataset | None
) -> tuple[Rows, dict[str, int]]:
    synthetic = SyntheticSettings(
        options.synthetic, options.synthetic_docs, options.synthetic_top_k, options.synthetic_filter
    )
    sources = parse_sources(options.pairs)
    examples, counts = build_examples(sources, corpus, data, options.seed, synthetic, options.show_progress)
    index_path = negatives_index(options.negatives, corpus, options.show_progress)
    if index_path is None:
        return [{"anchor": e.query, "positive": e.positive} for e in examples], counts
    from tessera.retrieval.index import Index

    index = Index.load(index_path)
    chosen = mine_negatives(
        index,
        examples,
        skip=options.negative_skip,
        depth=options.negative_depth,
        seed=options.seed,
        show_progress=options.show_progress,
    )
    texts = document_texts(index, chosen)
    rows = [
        {"anchor": e.query, "positive": e.positive, "negative": texts[doc_id]}
        for e, doc_id in zip(examples, chosen, strict=True)
        if doc_id in texts
    ]
    counts["without_negative"] = len(examples) - len(rows)
    if not rows:
        raise TesseraError("no example has an allowed negative in its window", field="negatives")
    return rows, counts


def _prepare(
    work: Path, fingerprint: dict[str, Any], make: Callable[[], tuple[Rows, dict[str, int]]]
) -> tuple[Rows, dict[str, int]]:
    """The rows of this run: read back when resuming the same run, else made and recorded."""
    prepared = work / PREPARED
    if prepared.is_file():
        record = json.loads(prepared.read_text(encoding="utf-8"))
        if record["fingerprint"] != fingerprint:
            changed = sorted(k for k in fingerprint if record["fingerprint"].get(k) != fingerprint[k])
            raise TesseraError(
                f"holds checkpoints of a training with other settings ({', '.join(changed)}); "
                "rerun with the same options to resume, or delete this folder to start over",
                file=work,
            )
        with (work / EXAMPLES).open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle], record["counts"]
    for stale in work.iterdir():  # a run cut off before its rows were recorded
        if stale.name != ".lock":
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    rows, counts = make()
    write_text_atomic(work / EXAMPLES, "".join(json.dumps(row) + "\n" for row in rows))
    write_text_atomic(prepared, json.dumps({"fingerprint": fingerprint, "counts": counts}, indent=2))
    return rows, counts


def _document_prompts(model, columns: Sequence[str]) -> dict[str, str]:
    """The model's own query/document prompts per column (ColBERT markers), as encode_* adds them."""
    prompts = getattr(model, "prompts", None) or {}
    wanted = {column: prompts.get("query" if column == "anchor" else "document") for column in columns}
    return {column: prompt for column, prompt in wanted.items() if prompt}


def _fingerprint(dataset: str | Path, recipe: Recipe, options: TrainOptions, corpus: Corpus) -> dict:
    """Everything that decides what a run learns: a resumed run must match it exactly."""
    path = Path(str(dataset)).expanduser()
    return {
        **{f.name: getattr(options, f.name) for f in fields(options) if f.name not in _RUN_ONLY},
        "kind": recipe.kind,
        "base": recipe.base,
        **recipe.settings,
        "dataset": str(path.resolve()) if path.exists() else str(dataset),
        "corpus": f"{corpus.name}:{corpus.fingerprint}",
        "pairs": list(parse_sources(options.pairs)),
    }


def _trainer(recipe: Recipe, options: TrainOptions, rows: Rows, work: Path):
    """The sentence-transformers trainer of `recipe`'s model, checkpointing into `work`."""
    import torch
    from datasets import Dataset
    from sentence_transformers.base.sampler import BatchSamplers
    from transformers.trainer_callback import PrinterCallback

    from tessera.training.callbacks import RichProgress

    args_class, trainer_class = recipe.classes()
    model = recipe.make_model()
    bf16 = use_bf16(options.precision)
    shared = {
        "batch_sampler": BatchSamplers.NO_DUPLICATES,  # a query's other positives are no in-batch negatives
        "prompts": _document_prompts(model, list(rows[0])),
    }
    args = args_class(
        output_dir=str(work),
        num_train_epochs=options.epochs,
        max_steps=options.max_steps or -1,
        per_device_train_batch_size=options.batch_size,
        learning_rate=options.learning_rate or recipe.learning_rate,
        warmup_steps=options.warmup,
        save_strategy="steps",
        save_steps=options.save_steps,
        save_total_limit=2,
        logging_steps=options.logging_steps,
        logging_first_step=True,  # the starting loss, and a run shorter than logging_steps has one
        report_to="none",
        disable_tqdm=True,
        seed=options.seed,
        data_seed=options.seed,
        dataloader_pin_memory=torch.cuda.is_available(),
        bf16=bf16,
        use_cpu=bf16 and not torch.cuda.is_available(),  # transformers' switch for CPU autocast
        **{**shared, **recipe.extra_args},
    )
    callbacks = list(options.callbacks)
    if options.show_progress:
        callbacks.append(RichProgress(f"training {recipe.kind}"))
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        loss=recipe.make_loss(model, options, options.scale or recipe.scale),
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)
    return trainer


def run_training(dataset: str | Path, output: str | Path, recipe: Recipe, options: TrainOptions) -> Path:
    """Train `recipe`'s model on `dataset` and publish it at `output` (see the module docstring)."""
    config.apply_offline_defaults()
    sources = (dataset, *([options.corpus] if options.corpus else ()))
    # --overwrite replaces a trained model (its record) or an empty folder, never a user's files
    target = new_target(output, options.overwrite, inputs=sources, marker=(RECORD, "a trained model"))
    check_negatives(options.negatives)
    if "synthetic" in parse_sources(options.pairs):
        check_synthetic_spec(options.synthetic)
        check_negatives(options.synthetic_filter)
    corpus = dataset_corpus(dataset, options.split, options.corpus)
    # Judgments are read even when resuming: a bad dataset or split fails before anything slow.
    data = None if recipe.make_rows else judged_split(dataset, options.split, parse_sources(options.pairs))
    from transformers.utils import logging as hf_logging

    from tessera.training.callbacks import RichProgress, logged_losses

    hf_logging.disable_progress_bar()  # one bar (ours), not one per load and save
    fingerprint = _fingerprint(dataset, recipe, options, corpus)
    work = target.with_name(f"{target.name}.tmp-train")
    with _locked(work):
        try:
            make = (
                (lambda: recipe.make_rows(options, corpus))
                if recipe.make_rows
                else (lambda: _make_rows(options, corpus, data))
            )
            rows, counts = _prepare(work, fingerprint, make)
        except BaseException:
            if not (work / PREPARED).exists():  # nothing worth resuming
                shutil.rmtree(work, ignore_errors=True)
            raise
        trainer = _trainer(recipe, options, rows, work)
        try:
            trainer.train(resume_from_checkpoint=last_complete_checkpoint(work))
        finally:  # an interrupted run keeps its checkpoints; the terminal gets its cursor back
            for callback in trainer.callback_handler.callbacks:
                if isinstance(callback, RichProgress):
                    callback.close()
        record = {
            "kind": recipe.kind,
            "created_at": utc_now(),
            "settings": {
                **fingerprint,
                "scale": options.scale or recipe.scale,
                "learning_rate": trainer.args.learning_rate,
                "bf16": trainer.args.bf16,
            },
            "examples": counts,
            "rows": len(rows),
            "steps": trainer.state.global_step,
            "losses": logged_losses(trainer.state.log_history),  # a resumed run's too
        }
        if recipe.before_save is not None:
            recipe.before_save(trainer.model)
        _publish(trainer.model, record, target, options.overwrite)
        shutil.rmtree(work)
    return target


_RUN_ONLY = {"epochs", "max_steps", "save_steps", "logging_steps", "overwrite", "show_progress", "callbacks"}


def _publish(model, record: dict[str, Any], target: Path, overwrite: bool) -> None:
    stage = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    staging.discard(stage)
    try:
        model.save_pretrained(str(stage))
        (stage / RECORD).write_text(json.dumps(record, indent=2), encoding="utf-8")
        staging.publish(stage, target, overwrite)
    except BaseException:
        staging.discard(stage)
        raise
