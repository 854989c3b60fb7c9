"""`tessera search` and `quickstart`: query an index."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from tessera.cli.app import (
    DepthOption,
    FilterOption,
    FuseOption,
    FusionOption,
    MmrDepthOption,
    MmrOption,
    ParamOption,
    PerDocumentOption,
    RemoveQueryOption,
    RerankDepthOption,
    RerankOption,
    WeightsOption,
    app,
    hits_table,
    out,
    parse_weights,
)
from tessera.errors import TesseraError
from tessera.retrieval.params import parse_params

HITS, RUN_HITS = 10, 1000  # hits printed for one query; per query of a TREC run, as evaluation runs have


@app.command()
def search(
    index_dir: Annotated[Path, typer.Argument(help="Index directory.")],
    query: Annotated[str | None, typer.Argument(help="Query text (or --queries).")] = None,
    k: Annotated[
        int | None, typer.Option("-k", help="Number of hits (default 10; per query with --queries, 1000).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print hits as JSON.")] = False,
    param: ParamOption = [],  # noqa: B006
    mmap: Annotated[
        bool, typer.Option("--mmap", help="Map the faiss index file, not read it (indexes larger than RAM).")
    ] = False,
    fuse: FuseOption = [],  # noqa: B006
    fusion: FusionOption = "rrf",
    weights: WeightsOption = None,
    depth: DepthOption = 100,
    queries: Annotated[
        str | None,
        typer.Option(
            help="Run every query of a .jsonl/.tsv file (judged or not), or of a dataset's --split "
            "(ir_datasets id or BEIR folder), into the TREC run --run; -k hits each."
        ),
    ] = None,
    split: Annotated[str, typer.Option(help="With --queries DATASET: its split.")] = "test",
    run: Annotated[Path | None, typer.Option(help="With --queries: write the TREC run here.")] = None,
    remove_query: RemoveQueryOption = False,
    rerank: RerankOption = None,
    rerank_depth: RerankDepthOption = 100,
    filter: FilterOption = None,
    mmr: MmrOption = None,
    mmr_depth: MmrDepthOption = None,
    per_document: PerDocumentOption = None,
) -> None:
    """Search an index, or several fused (--fuse), and print the top hits.

    Or run a whole query set into a TREC run file (--queries, --run). --rerank scores the first
    stage's hits again; --filter keeps documents whose metadata match; --mmr picks hits unlike each
    other; --per-document N: a chunked index's best passages, up to N of one document."""
    from tessera.data.metadata import parse_filter
    from tessera.retrieval.diversify import as_mmr
    from tessera.retrieval.fusion import check_depth, check_retrieval
    from tessera.retrieval.index import load_indexes
    from tessera.retrieval.query_set import search_one
    from tessera.retrieval.rerank import check_rerank_depth, load_reranker

    params, chosen = parse_params(param), parse_weights(weights)
    check_retrieval(len(fuse), fusion, chosen)
    check_depth(depth)
    where = parse_filter(filter)
    check_rerank_depth(rerank_depth)
    reranker = load_reranker(rerank) if rerank is not None else None
    diversity = as_mmr(mmr, mmr_depth)
    if (query is None) == (queries is None):
        message = (
            "give a QUERY or --queries, not both"
            if query is not None
            else "QUERY (or --queries FILE) is missing"
        )
        raise TesseraError(message, field="query")
    if queries is not None:
        if per_document not in (None, 1):
            raise TesseraError(
                "a TREC run ranks documents: --per-document is for one query", field="per_document"
            )
        if run is None or as_json:
            raise TesseraError("--queries writes a TREC run: give --run FILE (not --json)", field="run")
        hits_per_query = RUN_HITS if k is None else k
        _run_queries(
            [index_dir, *fuse],
            queries,
            split,
            run,
            hits_per_query,
            depth,
            fusion,
            chosen,
            params,
            mmap,
            remove_query,
            reranker,
            rerank_depth,
            where,
            diversity,
        )
        return
    if run is not None or remove_query:
        flag = "--run" if run is not None else "--remove-query"
        raise TesseraError(f"{flag} needs --queries (one query prints its hits)", field=flag.strip("-"))
    k = HITS if k is None else k
    indexes = load_indexes([index_dir, *fuse], params, mmap)
    hits = search_one(
        indexes,
        query,
        k,
        max(depth, k),
        fusion,
        chosen,
        reranker,
        rerank_depth,
        where,
        diversity,
        1 if per_document is None else per_document,
    )
    title = " + ".join(str(p) for p in [index_dir, *fuse]) + (f" ({fusion})" if fuse else "")
    title += f": {query}" + (f" (reranked by {reranker.spec})" if reranker is not None else "")
    title += f" (MMR {diversity.weight:g})" if diversity is not None else ""
    if as_json:
        print(json.dumps([asdict(hit) for hit in hits], indent=2))
    else:
        out.print(hits_table(hits, title))


@app.command()
def similar(
    index_dir: Annotated[Path, typer.Argument(help="Index directory.")],
    doc_id: Annotated[str, typer.Argument(help="A document of the index.")],
    k: Annotated[int, typer.Option("-k", help="Number of hits.")] = HITS,
    as_json: Annotated[bool, typer.Option("--json", help="Print hits as JSON.")] = False,
) -> None:
    """The documents most like one of the index's own (more like this)."""
    from tessera.retrieval.index import Index
    from tessera.retrieval.similar import similar as more_like

    hits = more_like(Index.load(index_dir), doc_id, k, with_text=True)
    if as_json:
        print(json.dumps([asdict(hit) for hit in hits], indent=2))
    else:
        out.print(hits_table(hits, f"{index_dir}: like {doc_id}"))


@app.command()
def quickstart(
    query: Annotated[str | None, typer.Argument(help="Query for the sample index.")] = None,
    k: Annotated[int, typer.Option("-k")] = 5,
) -> None:
    """Index the bundled sample with the bundled MiniLM and search it (no network needed)."""
    from tessera.quickstart import DEFAULT_QUERY
    from tessera.quickstart import quickstart as run_quickstart

    query = DEFAULT_QUERY if query is None else query  # an empty one given is refused, not replaced
    path, hits = run_quickstart(query, k=k)
    out.print(hits_table(hits, f"{path}: {query}"))


def _run_queries(
    index_dirs: list[Path],
    spec: str,
    split: str,
    run_path: Path,
    k: int,
    depth: int,
    fusion: str,
    weights: list[float] | None,
    params: dict[str, float | str],
    mmap: bool,
    remove_query: bool,
    reranker,
    rerank_depth: int,
    where: dict | None,
    diversity,
) -> None:
    from tessera.data.datasets import load_queries
    from tessera.durable import check_outputs
    from tessera.eval.runs import write_trec
    from tessera.retrieval.index import load_indexes
    from tessera.retrieval.query_set import iter_search

    check_outputs({"run": run_path}, inputs=[spec, *index_dirs])  # never the queries file it reads
    texts = load_queries(spec, split)
    indexes = load_indexes(index_dirs, params, mmap)
    results = iter_search(
        indexes,
        texts,
        k=k,
        depth=depth,
        fusion=fusion,
        weights=weights,
        remove_query=remove_query,
        reranker=reranker,
        rerank_depth=rerank_depth,
        filter=where,
        mmr=diversity,
    )
    queries, hits = write_trec(results, run_path)
    out.print(f"{queries} queries, {hits} hits -> {run_path}")
