"""`tessera index`, `reindex`, `add`, `delete`, `compact`: build and update index directories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tessera.cli.app import app, out
from tessera.errors import TesseraError
from tessera.retrieval.params import parse_params

# `index` and `reindex` take the same option: one definition.
TuneQueries = Annotated[
    Path | None,
    typer.Option(
        help="Sample queries (.jsonl/.tsv, 100 or more) to tune IVF/HNSW search defaults on, instead of "
        "perturbed corpus vectors."
    ),
]


@app.command()
def index(
    corpus: Annotated[
        str,
        typer.Argument(
            help="BEIR folder, .jsonl, .tsv, a folder of documents (text, Markdown, HTML, PDF, "
            "Office, EPUB, notebooks) or one, or ir_datasets id."
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Index directory to create.")],
    encoder: Annotated[
        str,
        typer.Option(
            help="bm25[:k1=..,b=..,title=..] | minilm | PATH | hub name | colbert:PATH | xtr:PATH, "
            "optionally @bf16 | @onnx | @onnx-int8 | @openvino | @auto for the runtime; or an "
            "OpenAI-compatible embeddings endpoint, http(s)://HOST[:PORT]/v1#MODEL."
        ),
    ] = "minilm",
    index_factory: Annotated[
        str, typer.Option("--index", help="faiss factory string, binary or bebr:BITS.")
    ] = "Flat",
    batch_size: Annotated[
        int | None,
        typer.Option(help="Documents per checkpointed batch, encoded longest first [default: 2048]."),
    ] = None,
    param: Annotated[
        list[str],
        typer.Option(
            help="Search parameter stored in the manifest, e.g. nprobe=16; "
            "for BM25, prf=rocchio (stored in its spec)."
        ),
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
            "as its best passage (MaxP). 128:32 ranked long documents best with MiniLM; RAG prompts "
            "keep more with 256:32."
        ),
    ] = None,
    ray: Annotated[
        bool,
        typer.Option(
            "--ray", help="Encode on a Ray cluster (dense encoders; pip install 'tessera\\[dist]')."
        ),
    ] = False,
    ray_address: Annotated[
        str | None, typer.Option(help="With --ray: the cluster to join (default: start a local one).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="With --ray: encoder actors (default: one per GPU, else one per CPU).")
    ] = None,
    shards: Annotated[
        int | None,
        typer.Option(help="With --ray: input shards (default: max(workers, documents / 10000))."),
    ] = None,
    layout: Annotated[
        str,
        typer.Option(help="With --ray: merged (one index) or sharded (one per shard, Flat/IVF)."),
    ] = "merged",
    tune_queries: TuneQueries = None,
) -> None:
    """Index a corpus (resumes an interrupted build of the same arguments)."""
    from tessera.indexing.builder import DEFAULT_BATCH, build_index

    if ray or ray_address is not None:
        if tune_queries is not None:
            raise TesseraError(
                "--tune-queries is not supported with --ray; reindex the result with it", field="tune_queries"
            )
        path = _index_ray(
            corpus, output, encoder, index_factory, batch_size, param, overwrite, doc_vectors, chunk,
            ray_address, workers, shards, layout,
        )  # fmt: skip
        out.print(f"index written to {path}")
        return
    for name, given in (("--workers", workers), ("--shards", shards), ("--layout", layout != "merged")):
        if given:
            raise TesseraError(f"{name} only applies with --ray", field=name.lstrip("-"))
    path = build_index(
        corpus,
        output,
        encoder=encoder,
        factory=index_factory,
        batch_size=DEFAULT_BATCH if batch_size is None else batch_size,
        search_params=parse_params(param),
        overwrite=overwrite,
        doc_vectors=doc_vectors,
        chunk=chunk,
        tune_queries=tune_queries,
    )
    out.print(f"index written to {path}")


def _index_ray(
    corpus: str,
    output: Path,
    encoder: str,
    factory: str,
    batch_size: int | None,
    param: list[str],
    overwrite: bool,
    doc_vectors: str,
    chunk: str | None,
    address: str | None,
    workers: int | None,
    shards: int | None,
    layout: str,
) -> Path:
    """`index --ray`: a thin skin over `build_index_ray`, refusing the single-process options."""
    from tessera.indexing.distributed import build_index_ray

    for name, given in (
        ("--chunk", chunk),
        ("--batch-size", batch_size),
        ("--doc-vectors", doc_vectors != "float16"),
    ):
        if given:
            raise TesseraError(
                f"{name} is not supported with --ray; index without --ray", field=name.lstrip("-")
            )
    return build_index_ray(
        corpus,
        output,
        encoder,
        factory,
        workers=workers,
        shards=shards,
        address=address,
        layout=layout,
        search_params=parse_params(param),
        overwrite=overwrite,
    )


@app.command()
def reindex(
    source: Annotated[Path, typer.Argument(help="An exact (Flat or HNSW) dense index.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Index directory to create.")],
    index_factory: Annotated[str, typer.Option("--index", help="faiss factory string, binary or bebr:BITS.")],
    param: Annotated[list[str], typer.Option(help="Search parameter, e.g. nprobe=16.")] = [],  # noqa: B006
    overwrite: Annotated[bool, typer.Option(help="Replace an existing index.")] = False,
    tune_queries: TuneQueries = None,
) -> None:
    """Rebuild an index with another vector backend from its stored vectors (no re-encoding)."""
    from tessera.indexing.reindex import reindex as run_reindex

    path = run_reindex(
        source, output, index_factory, parse_params(param), overwrite=overwrite, tune_queries=tune_queries
    )
    out.print(f"index written to {path}")


@app.command()
def add(
    index_dir: Annotated[Path, typer.Argument(help="Index directory to add to.")],
    corpus: Annotated[str, typer.Argument(help="Documents to add (any corpus form); their ids must be new.")],
    batch_size: Annotated[int, typer.Option(help="Documents encoded at once.")] = 256,
) -> None:
    """Add documents to an index (published atomically; every kind, sharded --ray indexes too)."""
    from tessera.indexing.updates import add_documents

    added = add_documents(index_dir, corpus, batch_size=batch_size)
    out.print(f"added {added} documents to {index_dir}")


@app.command()
def info(
    index_dir: Annotated[Path, typer.Argument(help="Index directory.")],
    verify: Annotated[bool, typer.Option("--verify", help="Check every file against its checksum.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the facts as JSON.")] = False,
) -> None:
    """What an index is: kind, encoder, documents, search defaults, size, metadata fields to filter by."""
    from tessera.indexing.info import index_info

    facts = index_info(index_dir, verify=verify)
    if as_json:
        print(json.dumps(facts, indent=2))
        return
    table = Table(title=str(facts["path"]), show_header=False)
    table.add_column("fact")
    table.add_column("value", overflow="fold")
    for name, value in facts.items():
        if name == "path":
            continue
        if name == "bytes":
            shown = f"{value / 2**20:.1f} MiB" if value >= 2**20 else f"{value / 2**10:.1f} KiB"
            value = f"{shown} ({value:,} bytes)"
        elif name == "metadata_fields":
            value = ", ".join(f"{key} ({count})" for key, count in value.items()) or "none"
        elif name == "verified":
            value = "every file matches its checksum" if value else "not checked (--verify)"
        elif isinstance(value, dict):
            value = ", ".join(f"{key}={item}" for key, item in value.items()) or "none"
        table.add_row(name.replace("_", " "), str(value))
    out.print(table)


@app.command()
def sync(
    index_dir: Annotated[Path, typer.Argument(help="Index directory to bring up to date.")],
    corpus: Annotated[
        str, typer.Argument(help="The corpus as it is now (any corpus form; a folder of documents).")
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would change.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan's ids as JSON.")] = False,
    reread: Annotated[
        bool,
        typer.Option(
            "--reread",
            help="Read every file of a folder, also those whose size and modification time are "
            "as when they were indexed (for tools that restore old times on changed files).",
        ),
    ] = False,
) -> None:
    """Bring an index up to date with its corpus: add new, re-encode changed, delete gone documents.

    Each step is published atomically; run it again to finish an interrupted one. A folder's files
    whose size and modification time did not change are not read again."""
    from tessera.indexing.sync import sync_index

    plan = sync_index(index_dir, corpus, dry_run=dry_run, show_progress=not as_json, reread=reread)
    if as_json:
        print(json.dumps(plan.report))
        return
    counts = ", ".join(f"{name} {count}" for name, count in plan.summary.items() if name != "unread")
    unread = f" ({plan.unread} files not read: size and time as when indexed)" if plan.unread else ""
    out.print(f"{'would change' if dry_run else 'synced'} {index_dir}: {counts}{unread}")
    for name in ("added", "changed", "deleted"):
        ids = getattr(plan, name)
        if ids and dry_run:
            shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
            out.print(f"  {name}: {shown}", highlight=False, soft_wrap=True)


@app.command()
def delete(
    index_dir: Annotated[Path, typer.Argument(help="Index directory to delete from.")],
    ids: Annotated[list[str] | None, typer.Argument(help="Document ids to delete.")] = None,
    ids_file: Annotated[Path | None, typer.Option(help="File of document ids, one per line.")] = None,
) -> None:
    """Delete documents by id (every id must be in the index; published atomically)."""
    from tessera.indexing.updates import delete_documents, read_ids_file

    wanted, where = list(ids or []), {}
    if ids_file is not None:
        listed, where = read_ids_file(ids_file)
        wanted += listed
    deleted = delete_documents(index_dir, wanted, where)
    out.print(f"deleted {deleted} documents from {index_dir}")


@app.command()
def compact(index_dir: Annotated[Path, typer.Argument(help="Index directory to compact.")]) -> None:
    """Rewrite an index without the tombstones of deleted documents (HNSW and other kinds without remove)."""
    from tessera.indexing.updates import compact as run_compact

    dropped = run_compact(index_dir)
    out.print(f"compacted {index_dir}: {dropped} tombstoned vectors dropped")
