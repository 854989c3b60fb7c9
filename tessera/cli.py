"""`tessera` command line: one short function per command, each one call into the Python API."""

from __future__ import annotations

import inspect
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tessera.errors import TesseraError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Tessera: index a corpus, search it, evaluate it.",
)
out = Console()
_state = {"debug": False}
MULTI_VALUE_OPTIONS = ("--metrics",)


def _parse_params(items: list[str]) -> dict[str, float | str]:
    """`nprobe=16` -> {"nprobe": 16.0}; non-numbers stay strings (`mode=sdc`)."""
    params: dict[str, float | str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not (sep and name and value):
            raise TesseraError(f"expected NAME=VALUE, got '{item}'", field="param")
        try:
            params[name] = float(value)
        except ValueError:
            params[name] = value
    return params


def _hits_table(hits, title: str) -> Table:
    table = Table(title=title)
    for column in ("rank", "doc id", "score", "text"):
        table.add_column(column, overflow="fold")
    for hit in hits:
        snippet = " ".join(filter(None, [hit.title, hit.text]))[:160]
        table.add_row(str(hit.rank), hit.doc_id, f"{hit.score:.4f}", snippet)
    return table


@app.callback()
def _options(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False) -> None:
    _state["debug"] = debug


@app.command()
def index(
    corpus: Annotated[
        str, typer.Argument(help="BEIR folder, .jsonl, .tsv, folder of .txt, or ir_datasets id.")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Index directory to create.")],
    encoder: Annotated[
        str, typer.Option(help="bm25[:k1=..,b=..] | minilm | PATH | hub name | colbert:PATH | xtr:PATH.")
    ] = "minilm",
    index_factory: Annotated[
        str, typer.Option("--index", help="faiss factory string, binary or bebr:BITS.")
    ] = "Flat",
    batch_size: Annotated[int, typer.Option(help="Documents per checkpointed batch.")] = 256,
    param: Annotated[
        list[str], typer.Option(help="Search parameter stored in the manifest, e.g. nprobe=16.")
    ] = [],  # noqa: B006
    overwrite: Annotated[bool, typer.Option(help="Replace an existing index.")] = False,
    doc_vectors: Annotated[
        str,
        typer.Option(help="Token indexes: stored document vectors, float16 or residual:BITS (ColBERTv2)."),
    ] = "float16",
) -> None:
    """Index a corpus (resumes an interrupted build of the same arguments)."""
    from tessera.indexing.builder import build_index

    path = build_index(
        corpus,
        output,
        encoder=encoder,
        factory=index_factory,
        batch_size=batch_size,
        search_params=_parse_params(param),
        overwrite=overwrite,
        doc_vectors=doc_vectors,
    )
    out.print(f"index written to {path}")


@app.command()
def reindex(
    source: Annotated[Path, typer.Argument(help="An exact (Flat or HNSW) dense index.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Index directory to create.")],
    index_factory: Annotated[str, typer.Option("--index", help="faiss factory string, binary or bebr:BITS.")],
    param: Annotated[list[str], typer.Option(help="Search parameter, e.g. nprobe=16.")] = [],  # noqa: B006
    overwrite: Annotated[bool, typer.Option(help="Replace an existing index.")] = False,
) -> None:
    """Rebuild an index with another vector backend from its stored vectors (no re-encoding)."""
    from tessera.indexing.reindex import reindex as run_reindex

    path = run_reindex(source, output, index_factory, _parse_params(param), overwrite=overwrite)
    out.print(f"index written to {path}")


@app.command()
def search(
    index_dir: Annotated[Path, typer.Argument(help="Index directory.")],
    query: Annotated[str, typer.Argument(help="Query text.")],
    k: Annotated[int, typer.Option("-k", help="Number of hits.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print hits as JSON.")] = False,
    param: Annotated[
        list[str], typer.Option(help="Search parameter over the stored ones, e.g. nprobe=16, mode=xtr.")
    ] = [],  # noqa: B006
) -> None:
    """Search an index and print the top hits."""
    from tessera.retrieval.index import Index

    hits = Index.load(index_dir, search_params=_parse_params(param)).search(query, k=k, with_text=True)
    if as_json:
        print(json.dumps([asdict(hit) for hit in hits], indent=2))
    else:
        out.print(_hits_table(hits, f"{index_dir}: {query}"))


@app.command(name="eval")
def eval_(
    index_dirs: Annotated[list[Path], typer.Argument(help="One or more index directories (fused).")],
    dataset: Annotated[str, typer.Option(help="ir_datasets id or BEIR folder.")],
    split: Annotated[str, typer.Option(help="Qrels split of a BEIR folder (or ID/SPLIT).")] = "test",
    metrics: Annotated[list[str], typer.Option(help="ir_measures metrics.")] = [],  # noqa: B006
    fusion: Annotated[str, typer.Option(help="How several indexes are fused.")] = "rrf",
    depth: Annotated[int, typer.Option(help="Hits retrieved per query and index.")] = 1000,
    run: Annotated[Path | None, typer.Option(help="Write the (fused) TREC run here.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write metrics as JSON here.")] = None,
    param: Annotated[
        list[str], typer.Option(help="Search parameter for every index, e.g. mode=xtr, k_prime=1000.")
    ] = [],  # noqa: B006
) -> None:
    """Evaluate one index, or several fused, on judged queries."""
    from tessera.eval.evaluate import DEFAULT_METRICS, evaluate

    names = [m for item in metrics for m in item.replace(",", " ").split()] or list(DEFAULT_METRICS)
    result = evaluate(
        index_dirs,
        dataset,
        split=split,
        metrics=names,
        fusion=fusion,
        depth=depth,
        run_path=run,
        json_path=json_path,
        search_params=_parse_params(param),
    )
    table = Table(title=f"{result.dataset} ({len(index_dirs)} index{'es' if len(index_dirs) > 1 else ''})")
    table.add_column("system")
    for name in names:
        table.add_column(name, justify="right")
    for system, values in [
        *result.inputs.items(),
        (f"{fusion} fusion" if result.inputs else str(index_dirs[0]), result.metrics),
    ]:
        table.add_row(system, *(f"{values[name]:.4f}" for name in names))
    out.print(table)


train_app = typer.Typer(no_args_is_help=True, help="Train encoders and compressed indexes.")
app.add_typer(train_app, name="train")


@train_app.command("jpq")
def train_jpq(
    index_dir: Annotated[Path, typer.Option("--index", help="A PQ{m} or OPQ{m},PQ{m} dense index.")],
    dataset: Annotated[str, typer.Option(help="ir_datasets id or BEIR folder with training qrels.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Index directory to create.")],
    split: Annotated[str, typer.Option(help="Qrels split to train on.")] = "train",
    epochs: Annotated[int, typer.Option()] = 10,
    title_pairs: Annotated[bool, typer.Option(help="Add (title -> document) pairs from the corpus.")] = False,
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
        use_title_pairs=title_pairs,
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
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
) -> None:
    """Retrain a BEBR index's binarizer (no labels), or train a compatible successor."""
    from tessera.training.bebr_index import retrain_bebr_index

    path = retrain_bebr_index(index_dir, output, bits=bits, compatible=compatible, overwrite=overwrite)
    out.print(f"BEBR index written to {path}")


TrainDataset = Annotated[str, typer.Option(help="ir_datasets id or BEIR folder (qrels + corpus).")]
TrainOutput = Annotated[Path, typer.Option("-o", "--output", help="Model folder to create.")]
TrainSplit = Annotated[str, typer.Option(help="Qrels split whose judged queries train.")]
TrainCorpus = Annotated[str | None, typer.Option(help="Corpus to use instead of the dataset's own.")]
TrainPairs = Annotated[str, typer.Option(help="Pair sources, comma-separated: qrels, titles, crop.")]
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
TrainLr = Annotated[float | None, typer.Option("--lr", help="Learning rate (dense 2e-5, multi-vector 5e-5).")]
TrainScale = Annotated[float | None, typer.Option(help="1/temperature (dense and xtr 20, colbert 1).")]
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
    """The options `train dense|colbert|xtr` share: only its signature is used."""


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
_KIND_OPTIONS = {"dense": [_DENSE_FREEZE], "colbert": [], "xtr": [_XTR_TOP_K]}
_ENCODER_DOCS = {
    "dense": "Fine-tune a dense encoder",
    "colbert": "Train a ColBERT (MaxSim) multi-vector encoder",
    "xtr": "Train an XTR (top-k token retrieval) multi-vector encoder",
}


def _encoder_training_command(kind: str):
    """`train KIND`: one call into tessera.training; the CLI options are `TrainOptions` fields."""

    def command(**params) -> None:
        dataset, output, base = params.pop("dataset"), params.pop("output"), params.pop("base")
        params["learning_rate"] = params.pop("lr")
        if kind == "dense":
            from tessera.training.dense import train_dense

            path = train_dense(dataset, output, base=base, **params)
        else:
            from tessera.training.multivector import train_multivector

            path = train_multivector(dataset, output, scoring=kind, base=base, **params)
        spec = str(path) if kind == "dense" else f"{kind}:{path}"
        out.print(f"{kind} encoder written to {path} (use --encoder {spec})")

    shared = list(inspect.signature(_encoder_training_options, eval_str=True).parameters.values())
    command.__signature__ = inspect.Signature(shared + _KIND_OPTIONS[kind])
    command.__doc__ = f"{_ENCODER_DOCS[kind]} (resumes an interrupted run of the same command)."
    return command


for _kind in _ENCODER_DOCS:
    train_app.command(_kind)(_encoder_training_command(_kind))


@app.command()
def quickstart(
    query: Annotated[str, typer.Argument(help="Query for the sample index.")] = "",
    k: Annotated[int, typer.Option("-k")] = 5,
) -> None:
    """Index the bundled sample with the bundled MiniLM and search it (no network needed)."""
    from tessera.quickstart import DEFAULT_QUERY
    from tessera.quickstart import quickstart as run_quickstart

    path, hits = run_quickstart(query or DEFAULT_QUERY, k=k)
    out.print(_hits_table(hits, f"{path}: {query or DEFAULT_QUERY}"))


def _expand_multi_value(argv: list[str]) -> list[str]:
    """Let `--metrics nDCG@10 R@100` take several values, as the docs promise."""
    expanded: list[str] = []
    taking: str | None = None
    for arg in argv:
        if arg.startswith("-"):
            taking = arg if arg in MULTI_VALUE_OPTIONS else None
            if taking is None:
                expanded.append(arg)
            continue
        if taking:
            expanded += [taking, arg]
        else:
            expanded.append(arg)
    return expanded


def main() -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit."""
    try:
        app(args=_expand_multi_value(sys.argv[1:]), prog_name="tessera")
    except (TesseraError, OSError) as exc:  # OSError: unwritable output, full disk, ...
        if _state["debug"]:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        sys.exit(130)
