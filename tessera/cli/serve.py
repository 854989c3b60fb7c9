"""`tessera serve`: the search and RAG service over one or more indexes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tessera.cli.app import app


@app.command()
def serve(
    indexes: Annotated[list[str], typer.Argument(help="Index directories, or NAME=DIR.")],
    host: Annotated[
        str, typer.Option(help="Interface to bind; 0.0.0.0 exposes the service (give it an API key).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Processes, each loading every index.")] = 1,
    max_k: Annotated[int, typer.Option(help="Largest k (and fusion depth) a request may ask.")] = 1000,
    max_queries: Annotated[int, typer.Option(help="Queries per POST /v1/search.")] = 256,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body (more: 413).")] = 1 << 20,
    batch_window_ms: Annotated[
        float, typer.Option(help="How long a micro-batch waits for more queries after its first.")
    ] = 2.0,
    max_batch: Annotated[int, typer.Option(help="Queries per micro-batch (1: one at a time).")] = 64,
    sub_batch: Annotated[
        int, typer.Option(help="Queries per encoder call inside a micro-batch, sorted by length.")
    ] = 8,
    generator: Annotated[
        str, typer.Option(help="RAG generator: none (prompt and sources only) | local | local:MODEL | URL.")
    ] = "none",
    follow_up: Annotated[
        str,
        typer.Option(
            help="What a chat's follow-up question searches when a request names none (chat UIs "
            "cannot): last | turns | rewrite (needs --generator).",
        ),
    ] = "last",
    mmap: Annotated[
        bool, typer.Option("--mmap", help="Map faiss index files, not read them; workers share them.")
    ] = False,
    rerank: Annotated[
        str | None,
        typer.Option(
            help='Reranker that requests may ask for ("rerank": true): an encoder spec, '
            "cross-encoder:NAME_OR_PATH or qlm[:LLM]."
        ),
    ] = None,
    reload_seconds: Annotated[
        float,
        typer.Option(
            help="How often to look for an index updated on disk (add, delete, sync) and reopen it; 0: never."
        ),
    ] = 5.0,
    writable: Annotated[
        bool,
        typer.Option(
            "--writable",
            help="Let clients add and delete documents (POST /v1/indexes/NAME/documents, /delete); "
            "off 127.0.0.1 only with an API key.",
        ),
    ] = False,
    api_key_file: Annotated[
        Path | None,
        typer.Option(
            help="Keys, one per line, of which every /v1/ request must bear one "
            "('Authorization: Bearer KEY'); $TESSERA_API_KEY adds one.",
        ),
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(
            help="An origin (https://app.example.org) whose pages may call the API from a browser; "
            "repeat for more, * for any.",
        ),
    ] = None,
) -> None:
    """Serve indexes over HTTP: JSON search and RAG API, and a search page at /."""
    import warnings

    from tessera import config
    from tessera.errors import TesseraError, TesseraWarning
    from tessera.indexing.manifest import Manifest
    from tessera.rag.conversation import check_follow_up
    from tessera.retrieval.rerank import check_reranker_spec
    from tessera.serve.auth import ENV_KEY, check_origin, is_loopback, key_digests
    from tessera.serve.server import run
    from tessera.serve.settings import ServeSettings

    settings = ServeSettings.from_specs(
        indexes,
        host=host,
        port=port,
        max_k=max_k,
        max_queries=max_queries,
        max_body_bytes=max_body_bytes,
        batch_window_ms=batch_window_ms,
        max_batch=max_batch,
        sub_batch=sub_batch,
        generator=generator,
        follow_up=follow_up,
        mmap=mmap,
        rerank=rerank,
        reload_seconds=reload_seconds,
        writable=writable,
        api_key_digests=key_digests(api_key_file, config.api_key()),
        cors_origins=[check_origin(origin) for origin in cors_origin or []],
    )
    check_follow_up(follow_up, generator != "none")
    if rerank is not None:
        check_reranker_spec(rerank)  # a wrong spec fails here, not as a 503 on every request
    if not 0 <= port <= 65535:  # 0: a free port the system picks
        raise TesseraError(f"must be 0-65535, got {port}", field="port")
    for path in settings.indexes.values():
        Manifest.read(Path(path), verify=False)  # a wrong path fails here, in one line, not in a worker
    for name, value in (
        ("workers", workers),
        ("max-k", max_k),
        ("max-queries", max_queries),
        ("max-batch", max_batch),
        ("sub-batch", sub_batch),
    ):
        if value < 1:
            raise TesseraError(f"must be at least 1, got {value}", field=name)
    if reload_seconds < 0:
        raise TesseraError(f"must be 0 (never) or more, got {reload_seconds}", field="reload-seconds")
    if writable and workers > 1 and reload_seconds == 0:
        raise TesseraError(
            "--writable with several workers needs --reload-seconds > 0: the other workers see a "
            "write when they next look for changed indexes",
            field="reload-seconds",
        )
    if not is_loopback(host) and not settings.api_key_digests:
        if writable:
            raise TesseraError(
                f"--writable on {host} lets anyone who reaches it change the index: give an API key "
                f"(--api-key-file or ${ENV_KEY}), or serve on 127.0.0.1",
                field="host",
            )
        warnings.warn(
            f"serving on {host} with no API key: anyone who reaches it can search it "
            f"(--api-key-file or ${ENV_KEY} sets one)",
            TesseraWarning,
            stacklevel=1,
        )
    run(settings, workers)
