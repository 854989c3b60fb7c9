"""`tessera search` and `quickstart`: query an index."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from tessera.cli.app import (
    DepthOption,
    FuseOption,
    FusionOption,
    WeightsOption,
    app,
    hits_table,
    out,
    parse_params,
    parse_weights,
)


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
    fuse: FuseOption = [],  # noqa: B006
    fusion: FusionOption = "rrf",
    weights: WeightsOption = None,
    depth: DepthOption = 100,
) -> None:
    """Search an index, or several fused (--fuse), and print the top hits."""
    from tessera.retrieval.fusion import check_retrieval, hybrid_search
    from tessera.retrieval.index import Index

    params, chosen = parse_params(param), parse_weights(weights)
    check_retrieval(len(fuse), fusion, chosen)
    if fuse:
        indexes = [Index.load(path, search_params=params, mmap=mmap) for path in [index_dir, *fuse]]
        hits = hybrid_search(
            indexes,
            [query],
            k=k,
            depth=max(depth, k),
            fusion=fusion,
            weights=chosen,
            with_text=True,
        )[0]
        title = f"{' + '.join(str(p) for p in [index_dir, *fuse])} ({fusion}): {query}"
    else:
        hits = Index.load(index_dir, search_params=params, mmap=mmap).search(query, k=k, with_text=True)
        title = f"{index_dir}: {query}"
    if as_json:
        print(json.dumps([asdict(hit) for hit in hits], indent=2))
    else:
        out.print(hits_table(hits, title))


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
