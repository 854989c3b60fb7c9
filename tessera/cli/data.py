"""`tessera data ...`: prepare collections (BEIR folders with splits) and synthetic training queries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tessera.cli.app import app, out

data_app = typer.Typer(no_args_is_help=True, help="Prepare datasets and training data.")
app.add_typer(data_app, name="data")


@data_app.command("beir")
def beir(
    source: Annotated[
        str, typer.Argument(help="ir_datasets id with docs, queries and qrels (e.g. glasgow/lisa).")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="BEIR folder to create.")],
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
) -> None:
    """Write a dataset as a BEIR folder with train/test query splits (by a hash of the query id)."""
    from tessera.data.beir_writer import write_beir

    path = write_beir(source, output, overwrite=overwrite)
    out.print(f"BEIR folder written to {path} (splits: qrels/train.tsv, qrels/test.tsv, qrels/all.tsv)")


@data_app.command("extract")
def extract(
    corpus: Annotated[
        str, typer.Argument(help="Any corpus; typically a folder of documents, or one document.")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="JSONL file to write.")],
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
) -> None:
    """Write a corpus as one JSONL file ({_id, title, text, metadata} a line).

    What the readers made of a folder of PDFs, Office files or books, to inspect or use elsewhere."""
    from tessera.data.export import export_corpus

    count = export_corpus(corpus, output, overwrite=overwrite)
    out.print(f"{count} documents written to {output}")


@data_app.command("synth-queries")
def synth_queries(
    corpus: Annotated[
        str,
        typer.Argument(
            help="Corpus: BEIR folder, JSONL, TSV, a folder of documents (text, Markdown, HTML, PDF, "
            "Office, EPUB, notebooks) or one, or ir_datasets id."
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="JSONL file of {doc_id, query} to write.")],
    generator: Annotated[
        str, typer.Option(help="local | local:MODEL | http(s)://HOST/v1[#MODEL].")
    ] = "local",
    max_docs: Annotated[
        int, typer.Option(help="Documents to ask (a fixed hash-ordered sample); 0: all.")
    ] = 300,
    dataset: Annotated[
        str | None, typer.Option(help="Dataset whose judged training queries are the few-shot examples.")
    ] = None,
    split: Annotated[str, typer.Option(help="Split of --dataset to take examples from.")] = "train",
    filter: Annotated[
        str, typer.Option("--filter", help="Round-trip retriever: bm25 | minilm | INDEX_DIR | none.")
    ] = "bm25",
    top_k: Annotated[int, typer.Option(help="Keep a query if its document is in the filter's top k.")] = 10,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
) -> None:
    """Generate queries for corpus documents with an LLM, keep the round-trip consistent ones.

    Answers are cached as they come (TESSERA_CACHE_DIR/synthetic): an interrupted run resumes.
    Train on the file with `--pairs synthetic --synthetic FILE`.
    """
    from tessera.errors import TesseraError
    from tessera.training.synthetic import SyntheticSettings, write_query_file

    try:
        settings = SyntheticSettings(generator, max_docs or None, top_k, filter)
        path, kept, generated = write_query_file(
            corpus, output, dataset=dataset, split=split, settings=settings, overwrite=overwrite
        )
    except TesseraError as exc:  # the library names its own fields; name this command's options
        exc.field = SYNTH_OPTIONS.get(exc.field, exc.field)
        raise
    if Path(generator).expanduser().is_file():  # a query file is read as filtered when written
        how = f"queries of {generator} kept (their documents are in the corpus)"
    else:
        how = f"generated queries kept (round trip: {filter} top {top_k})"
    out.print(f"{kept} of {generated} {how}; written to {path}")


# `SyntheticSettings`' fields (as `train --synthetic-*` names them) -> `data synth-queries`' options
SYNTH_OPTIONS = {
    "synthetic": "generator",
    "synthetic_docs": "max-docs",
    "synthetic_top_k": "top-k",
    "negatives": "filter",
}


def _minilm_token_counter():
    """Counts tokens of the bundled MiniLM's wordpiece tokenizer (no special tokens); the
    tokenizer loads on the first call, so bad arguments fail before it does."""
    tokenizer = None

    def count(text: str) -> int:
        nonlocal tokenizer
        if tokenizer is None:
            import transformers

            from tessera.models.bundled import bundled_path

            tokenizer = transformers.AutoTokenizer.from_pretrained(bundled_path("minilm"))
            tokenizer.model_max_length = 1 << 30  # counting only: no "longer than 512" warning
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return count


@data_app.command("longdoc")
def longdoc(
    folder: Annotated[
        str, typer.Argument(help="Judged BEIR folder (or NAME / NAME-beir in TESSERA_DATA_DIR).")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="BEIR folder to create.")],
    tokens: Annotated[
        int, typer.Option("--tokens", help="Length of a long document, in MiniLM wordpiece tokens.")
    ],
    mode: Annotated[
        str, typer.Option(help="mix: pack documents together; needle: one judged document among fillers.")
    ] = "mix",
    docs: Annotated[int, typer.Option(help="Write at most this many long documents (0: all).")] = 0,
    distractors: Annotated[
        int, typer.Option(help="needle: filler-only long documents (-1: about the filler pool once).")
    ] = -1,
    seed: Annotated[int, typer.Option(help="Seed of every random choice (same seed, same bytes).")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
) -> None:
    """Build a long-document task from real judgments, as a BEIR folder with the source's splits.

    Every judgment is carried exactly (mix: a long document's grade is the highest grade of
    its members; needle: each long document holds one judged document). `members.tsv` says
    where each document lies, `lost.tsv` lists judgments that could not be carried.
    """
    from tessera.data.longdoc import build_longdoc

    stats = build_longdoc(
        folder,
        output,
        tokens=tokens,
        count_tokens=_minilm_token_counter(),
        mode=mode,
        docs=docs if docs != 0 else None,
        distractors=None if distractors == -1 else distractors,
        seed=seed,
        overwrite=overwrite,
        counter_name="minilm wordpiece (bundled), no special tokens",
    )
    for line in stats.lines():
        out.print(line, markup=False, highlight=False, soft_wrap=True)


@data_app.command("loco")
def loco(
    queries: Annotated[
        Path, typer.Argument(help="LoCoV1-Queries export: JSONL or Parquet file, or a folder of them.")
    ],
    documents: Annotated[
        Path, typer.Argument(help="LoCoV1-Documents export: JSONL or Parquet file, or a folder of them.")
    ],
    task: Annotated[
        str, typer.Option("--task", help="Value of the `dataset` column (e.g. qasper_abstract).")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="BEIR folder to create.")],
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
) -> None:
    """Write one LoCoV1 task (exported locally) as a BEIR folder.

    hazyresearch/LoCoV1-Queries and -Documents: all queries in the test split, grade 1 for each
    answer pid."""
    from tessera.data.loco import write_loco

    stats = write_loco(queries, documents, task, output, overwrite=overwrite)
    out.print(
        f"LoCoV1 {stats.task}: {stats.documents} documents, {stats.queries} queries "
        f"({stats.judged_queries} judged, {stats.judgments} judgments); written to {stats.output}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
