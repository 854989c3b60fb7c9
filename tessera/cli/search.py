"""`tessera search` and `quickstart`: query an index."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from tessera.cli.app import app, hits_table, out, parse_params


@app.command()
def search(
    index_dir: Annotated[Path, typer.Argument(help="Index directory.")],
    query: Annotated[str, typer.Argument(help="Query text.")],
    k: Annotated[int, typer.Option("-k", help="Number of hits.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print hits as JSON.")] = False,
    param: Annotated[
        list[str], typer.Option(help="Search parameter over the stored ones, e.g. nprobe=16, mode=xtr.")
    ] = [],  # noqa: B006
    mmap: Annotated[
        bool, typer.Option("--mmap", help="Map the faiss index file, not read it (indexes larger than RAM).")
    ] = False,
) -> None:
    """Search an index and print the top hits."""
    from tessera.retrieval.index import Index

    index = Index.load(index_dir, search_params=parse_params(param), mmap=mmap)
    hits = index.search(query, k=k, with_text=True)
    if as_json:
        print(json.dumps([asdict(hit) for hit in hits], indent=2))
    else:
        out.print(hits_table(hits, f"{index_dir}: {query}"))


@app.command()
def quickstart(
    query: Annotated[str, typer.Argument(help="Query for the sample index.")] = "",
    k: Annotated[int, typer.Option("-k")] = 5,
) -> None:
    """Index the bundled sample with the bundled MiniLM and search it (no network needed)."""
    from tessera.quickstart import DEFAULT_QUERY
    from tessera.quickstart import quickstart as run_quickstart

    path, hits = run_quickstart(query or DEFAULT_QUERY, k=k)
    out.print(hits_table(hits, f"{path}: {query or DEFAULT_QUERY}"))
