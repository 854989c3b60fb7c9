"""`tessera train ...`: encoders (dense, ColBERT, XTR, M2), cross-encoder rerankers, and compressed
indexes (JPQ, BEBR)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated

import typer

from tessera.cli.app import app, out

train_app = typer.Typer(no_args_is_help=True, help="Train encoders and compressed indexes.")
app.add_typer(train_app, name="train")


@train_app.command("jpq")
def train_jpq(
    index_dir: Annotated[Path, typer.Option("--index", help="A PQ{m} or OPQ{m},PQ{m} dense index.")],
    dataset: Annotated[str, typer.Option(help="ir_datasets id or BEIR folder with training qrels.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Index directory to create.")],
    split: TrainSplit = "train",
    epochs: Annotated[int, typer.Option()] = 10,
    pairs: Annotated[
        str, typer.Option(help="Pair sources, comma-separated: qrels, titles, crop, ict, synthetic.")
    ] = "qrels",
    synthetic: Annotated[
        str, typer.Option(help="The synthetic source's generator (local, URL) or a synth-queries file.")
    ] = "local",
    synthetic_docs: Annotated[int, typer.Option(help="Documents the synthetic source asks; 0: all.")] = 300,
    seed: Annotated[int, typer.Option(help="Seed of the pair order and the model's initial state.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
) -> None:
    """JPQ: train the query encoder and the PQ centroids jointly; document codes stay fixed."""
    from tessera.training.jpq import train_jpq as run_jpq

    path = run_jpq(
        index_dir,
        dataset,
        output,
        split=split,
        epochs=epochs,
        pairs=pairs,
        synthetic=synthetic,
        synthetic_docs=synthetic_docs or None,
        seed=seed,
        overwrite=overwrite,
    )
    out.print(f"JPQ index written to {path}")


@train_app.command("bebr")
def train_bebr(
    index_dir: Annotated[Path, typer.Option("--index", help="A bebr:BITS index.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Index directory to create.")],
    bits: Annotated[int | None, typer.Option(help="Bits per dimension (default: the index's).")] = None,
    compatible: Annotated[
        bool,
        typer.Option(
            help="Train a successor compatible with the old codes; "
            "documents keep their codes, queries use the new binarizer."
        ),
    ] = False,
    epochs: Annotated[
        int | None,
        typer.Option(help="Training epochs (default: the trainer's; 0 = the ITQ start indexing fits)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
) -> None:
    """Retrain a BEBR index's binarizer (no labels), or train a compatible successor."""
    from tessera.training.bebr_index import retrain_bebr_index

    given = {} if epochs is None else {"epochs": epochs}
    path = retrain_bebr_index(
        index_dir, output, bits=bits, compatible=compatible, overwrite=overwrite, **given
    )
    out.print(f"BEBR index written to {path}")


TrainDataset = Annotated[str, typer.Option(help="ir_datasets id or BEIR folder (qrels + corpus).")]
TrainOutput = Annotated[Path, typer.Option("-o", "--output", help="Model folder to create.")]
TrainSplit = Annotated[
    str, typer.Option(help="Qrels split whose judged queries train; foldIofK-train for cross-validation.")
]
TrainCorpus = Annotated[str | None, typer.Option(help="Corpus to use instead of the dataset's own.")]
TrainPairs = Annotated[
    str,
    typer.Option(
        help="Pair sources, comma-separated: qrels, titles, crop, ict, synthetic "
        "(a source that gives nothing on this corpus is skipped with a warning)."
    ),
]
TrainSynthetic = Annotated[
    str,
    typer.Option(help="The synthetic source's generator: local | local:MODEL | URL | a synth-queries file."),
]
TrainSyntheticDocs = Annotated[int, typer.Option(help="Documents the synthetic source asks; 0: all.")]
TrainSyntheticTopK = Annotated[
    int, typer.Option(help="Round trip: keep a synthetic query if its document is in the filter's top k.")
]
TrainSyntheticFilter = Annotated[
    str, typer.Option(help="Round-trip retriever: bm25 | minilm | INDEX_DIR | none.")
]
TrainNegatives = Annotated[
    str, typer.Option(help="Negatives from: bm25[:k1=..,b=..] | minilm (cached index) | INDEX_DIR | none.")
]
TrainSkip = Annotated[int, typer.Option(help="Top ranks skipped before the negative window.")]
TrainDepth = Annotated[int, typer.Option(help="Ranks in the negative window.")]
TrainLoss = Annotated[str, typer.Option(help="mnrl, or cached (GradCache: big batches, bounded memory).")]
TrainMiniBatch = Annotated[int, typer.Option(help="Rows per forward pass of the cached loss.")]
TrainEpochs = Annotated[float, typer.Option()]
TrainMaxSteps = Annotated[int | None, typer.Option(help="Stop after this many steps (overrides epochs).")]
TrainBatch = Annotated[int, typer.Option(help="Rows per batch (in-batch negatives).")]
TrainLr = Annotated[
    float | None,
    typer.Option("--lr", help="Learning rate (dense 2e-5, multi-vector 5e-5, cross-encoder 1e-4)."),
]
TrainScale = Annotated[
    float | None, typer.Option(help="1/temperature (dense and xtr 20, colbert 1, cross-encoder 10).")
]
TrainMaxLength = Annotated[int, typer.Option(help="Tokens per document.")]
TrainPrecision = Annotated[
    str, typer.Option(help="auto (bf16 where the CPU/GPU has native bf16, else fp32) | bf16 | fp32.")
]
TrainSeed = Annotated[int, typer.Option()]
TrainSaveSteps = Annotated[int, typer.Option(help="Steps between resumable checkpoints.")]
TrainOverwrite = Annotated[bool, typer.Option(help="Replace an existing output.")]


def _encoder_training_options(
    dataset: TrainDataset,
    output: TrainOutput,
    base: Annotated[str, typer.Option(help="minilm | a model folder or hub name to start from.")] = "minilm",
    split: TrainSplit = "train",
    corpus: TrainCorpus = None,
    pairs: TrainPairs = "qrels,titles",
    synthetic: TrainSynthetic = "local",
    synthetic_docs: TrainSyntheticDocs = 300,
    synthetic_top_k: TrainSyntheticTopK = 10,
    synthetic_filter: TrainSyntheticFilter = "bm25",
    negatives: TrainNegatives = "bm25",
    negative_skip: TrainSkip = 0,
    negative_depth: TrainDepth = 30,
    loss: TrainLoss = "mnrl",
    mini_batch_size: TrainMiniBatch = 16,
    epochs: TrainEpochs = 1.0,
    max_steps: TrainMaxSteps = None,
    batch_size: TrainBatch = 32,
    lr: TrainLr = None,
    scale: TrainScale = None,
    max_length: TrainMaxLength = 256,
    precision: TrainPrecision = "auto",
    seed: TrainSeed = 0,
    save_steps: TrainSaveSteps = 20,
    overwrite: TrainOverwrite = False,
) -> None:
    """The options `train dense|colbert|xtr|cross-encoder` share: only its signature is used."""


_XTR_TOP_K = inspect.Parameter(
    "top_k",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    default=256,
    annotation=Annotated[int, typer.Option(help="Token matches kept per query token in the XTR loss.")],
)
_DENSE_FREEZE = inspect.Parameter(
    "freeze_documents",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    default=False,
    annotation=Annotated[
        bool,
        typer.Option(help="Train a query tower only; documents keep the base model's embeddings."),
    ],
)
_CROSS_NEGATIVES = inspect.Parameter(
    "num_negatives",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    default=1,
    annotation=Annotated[
        int, typer.Option(help="Other rows' passages each query is scored against, beside its hard negative.")
    ],
)
_CROSS_HEAD_LR = inspect.Parameter(
    "head_lr",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    default=1e-2,
    annotation=Annotated[
        float, typer.Option("--head-lr", help="Learning rate of a new head (--lr is the body's).")
    ],
)
_KIND_OPTIONS = {
    "dense": [_DENSE_FREEZE],
    "colbert": [],
    "xtr": [_XTR_TOP_K],
    "cross-encoder": [_CROSS_NEGATIVES, _CROSS_HEAD_LR],
}
_ENCODER_DOCS = {
    "dense": "Fine-tune a dense encoder",
    "colbert": "Train a ColBERT (MaxSim) multi-vector encoder",
    "xtr": "Train an XTR (top-k token retrieval) multi-vector encoder",
    "cross-encoder": "Train a cross-encoder reranker (query and passage read together; on one collection's "
    "training split it ranked below BM25 here: docs/results.md section 21)",
}


def _encoder_training_command(kind: str):
    """`train KIND`: one call into tessera.training; the CLI options are `TrainOptions` fields."""

    def command(**params) -> None:
        dataset, output, base = params.pop("dataset"), params.pop("output"), params.pop("base")
        params["learning_rate"] = params.pop("lr")
        params["synthetic_docs"] = params["synthetic_docs"] or None
        if kind == "dense":
            from tessera.training.dense import train_dense

            path = train_dense(dataset, output, base=base, **params)
            use = f"--encoder {path}"
        elif kind == "cross-encoder":
            from tessera.training.cross_encoder import train_cross_encoder

            params["head_learning_rate"] = params.pop("head_lr")
            path = train_cross_encoder(dataset, output, base=base, **params)
            use = f"--rerank cross-encoder:{path}"
        else:
            from tessera.training.multivector import train_multivector

            path = train_multivector(dataset, output, scoring=kind, base=base, **params)
            use = f"--encoder {kind}:{path}"
        out.print(f"{kind} {'model' if kind == 'cross-encoder' else 'encoder'} written to {path} (use {use})")

    shared = list(inspect.signature(_encoder_training_options, eval_str=True).parameters.values())
    command.__signature__ = inspect.Signature(shared + _KIND_OPTIONS[kind])
    command.__doc__ = f"{_ENCODER_DOCS[kind]} (resumes an interrupted run of the same command)."
    return command


for _kind in _ENCODER_DOCS:
    train_app.command(_kind)(_encoder_training_command(_kind))


@train_app.command("m2")
def train_m2(
    dataset: TrainDataset,
    output: TrainOutput,
    stage: Annotated[
        str,
        typer.Option(help="distill (stage 1: MiniLM distillation) | finetune (stage 2) | both."),
    ] = "distill",
    base: Annotated[
        str | None, typer.Option(help="M2 folder to start from (stage 1 starts fresh without one).")
    ] = None,
    layers: Annotated[int, typer.Option(help="Layers of a fresh model (384 wide, Monarch MLP).")] = 6,
    max_length: Annotated[int, typer.Option(help="Tokens per sequence (up to 32768).")] = 2048,
    distill_epochs: Annotated[float | None, typer.Option(help="Stage 1 passes over its rows (3).")] = None,
    distill_docs: Annotated[
        int | None,
        typer.Option(
            help="Stage 1 documents (plus their titles and a quarter as many long rows); default 1000."
        ),
    ] = None,
    split: TrainSplit = "train",
    corpus: TrainCorpus = None,
    pairs: TrainPairs = "qrels,titles",
    negatives: TrainNegatives = "bm25",
    epochs: TrainEpochs = 1.0,
    max_steps: TrainMaxSteps = None,
    batch_size: Annotated[int, typer.Option(help="Stage 2 queries per batch (the paper: 1).")] = 1,
    lr: Annotated[float | None, typer.Option("--lr", help="Stage 2 learning rate (5e-5).")] = None,
    precision: TrainPrecision = "auto",
    seed: TrainSeed = 0,
    save_steps: TrainSaveSteps = 20,
    overwrite: TrainOverwrite = False,
) -> None:
    """Train an M2-BERT long-context retriever: distil MiniLM, then fine-tune on pairs (resumable)."""
    from tessera.training.m2 import train_m2 as run_m2

    path = run_m2(
        dataset,
        output,
        stage=stage,
        base=base,
        layers=layers,
        distill_epochs=distill_epochs,
        distill_docs=distill_docs,
        max_length=max_length,
        split=split,
        corpus=corpus,
        pairs=pairs,
        negatives=negatives,
        epochs=epochs,
        max_steps=max_steps,
        batch_size=batch_size,
        learning_rate=lr,
        precision=precision,
        seed=seed,
        save_steps=save_steps,
        overwrite=overwrite,
    )
    out.print(f"M2 encoder written to {path} (use --encoder m2:{path})")
