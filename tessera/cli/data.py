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


@data_app.command("synth-queries")
def synth_queries(
    corpus: Annotated[
        str, typer.Argument(help="Corpus: BEIR folder, JSONL, TSV, .txt folder or ir_datasets id.")
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
    from tessera.training.synthetic import SyntheticSettings, write_query_file

    settings = SyntheticSettings(generator, max_docs or None, top_k, filter)
    path, kept, generated = write_query_file(
        corpus, output, dataset=dataset, split=split, settings=settings, overwrite=overwrite
    )
    out.print(
        f"{kept} of {generated} generated queries kept (round trip: {filter} top {top_k}); written to {path}"
    )
