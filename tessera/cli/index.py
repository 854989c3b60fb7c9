"""`tessera index` and `reindex`: build index directories."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tessera.cli.app import app, out, parse_params


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
    chunk: Annotated[
        str | None,
        typer.Option(
            help="TOKENS[:OVERLAP]: index passages of at most TOKENS encoder tokens; a document scores "
            "as its best passage (MaxP)."
        ),
    ] = None,
) -> None:
    """Index a corpus (resumes an interrupted build of the same arguments)."""
    from tessera.indexing.builder import build_index

    path = build_index(
        corpus,
        output,
        encoder=encoder,
        factory=index_factory,
        batch_size=batch_size,
        search_params=parse_params(param),
        overwrite=overwrite,
        doc_vectors=doc_vectors,
        chunk=chunk,
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

    path = run_reindex(source, output, index_factory, parse_params(param), overwrite=overwrite)
    out.print(f"index written to {path}")
