"""The FastAPI app: routes over the Python API (Index, RRF fusion, the RAG pipeline) only.

`create_app(settings)` returns an app whose lifespan starts loading the indexes in the
background, so `/health` can answer 503 while they load and 200 once they are ready."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from tessera.rag.generators import open_generator
from tessera.retrieval.diversify import as_mmr
from tessera.retrieval.fusion import check_retrieval
from tessera.retrieval.hits import Hit
from tessera.retrieval.index import check_search
from tessera.retrieval.similar import similar
from tessera.serve.auth import ApiKeyGuard, accepts
from tessera.serve.chat import ChatBody, ChatService
from tessera.serve.documents import DeleteBody, DocumentsBody, DocumentService
from tessera.serve.embeddings import EmbeddingsBody, EmbeddingService
from tessera.serve.errors import ApiError, BodyLimit, install_error_handlers
from tessera.serve.metrics import RequestMetrics, exposition
from tessera.serve.pool import IndexPool, Loader
from tessera.serve.rag import RagService
from tessera.serve.reranking import RerankBody, RerankService
from tessera.serve.schemas import DEFAULT_K, RagBody, SearchBody, hit_json
from tessera.serve.settings import ServeSettings

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("tessera.serve")


def create_app(settings: ServeSettings, load: Loader | None = None) -> FastAPI:
    """`load(path) -> Index` defaults to `Index.load` (tests pass one that waits, or reuses)."""
    pool = IndexPool(settings, load) if load else IndexPool(settings)
    reranking = RerankService(settings.rerank)
    rag = RagService(pool, None, reranking)
    embeddings = EmbeddingService(pool, settings.max_queries)
    chat = ChatService(pool, rag, settings.follow_up)
    writes = DocumentService(pool, settings.writable)

    async def start() -> None:
        try:
            rag.generator = await asyncio.to_thread(open_generator, settings.generator)
        except Exception as exc:
            pool.failure = f"generator '{settings.generator}' failed: {exc}"
            log.error("%s", pool.failure)
            return
        try:
            await asyncio.to_thread(reranking.load)
        except Exception as exc:
            pool.failure = f"reranker '{settings.rerank}' failed: {exc}"
            log.error("%s", pool.failure)
            return
        await pool.load_all()
        if pool.ready:
            await pool.watch()  # until the app stops: indexes updated on disk are reopened

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.create_task(start())
        try:
            yield
        finally:
            loading.cancel()
            await pool.close()
            rag.close()
            reranking.close()
            writes.close()

    app = FastAPI(title="Tessera", lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.pool, app.state.rag, app.state.chat = pool, rag, chat
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(ApiKeyGuard, digests=settings.api_key_digests)  # before the body is read
    if settings.cors_origins:  # answers preflights (which carry no key), labels 401s too
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type"],
            max_age=600,
        )
    app.add_middleware(RequestMetrics)  # outermost: every request counted, refused ones too
    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def check_k(k: int | None, field: str = "k") -> int:
        """`k` against `--max-k`; None (not given) is the default 10 cut to the cap."""
        if k is None:
            return min(DEFAULT_K, settings.max_k)
        if k > settings.max_k:
            raise ApiError(400, f"field '{field}': at most {settings.max_k}, got {k}")
        return k

    def check_caps(body, fused: bool) -> None:
        """`k` and the depths a request uses, against `--max-k`: `depth` when it fuses,
        `rerank_depth` when it reranks; a default over the cap (k 10, the depths 100) is cut to it
        (it refused every request under a small cap), a value given over it is refused."""
        uses = (("k", True), ("depth", fused), ("rerank_depth", body.rerank), ("mmr_depth", body.mmr_depth))
        for name, used in uses:
            if used and name not in body.model_fields_set:
                setattr(body, name, min(getattr(body, name), settings.max_k))
            elif used:
                check_k(getattr(body, name), name)

    def answer(queries: list[str], rows: list[list[Hit]], started: float) -> dict[str, Any]:
        """Plain JSON types only, returned as a JSONResponse: no response-model pass per request."""
        return {
            "results": [
                {"query": q, "hits": [hit_json(h, q) for h in row]}
                for q, row in zip(queries, rows, strict=True)
            ],
            "took_ms": round((time.perf_counter() - started) * 1000, 3),
        }

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)  # HEAD: uptime probes
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        """Open to all (a load balancer's probe has no key); what is served, only to a key holder."""
        pool.get(None)  # 503 while loading
        status = {"status": "ok", "auth": bool(settings.api_key_digests)}
        if not accepts(settings.api_key_digests, request.headers.raw):
            return status  # a probe's answer: no summary built
        return {
            **status,
            "generator": rag.generator_name(),
            "reranker": reranking.spec,
            "writable": settings.writable,
            "indexes": pool.summaries(),
        }

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus' text format (serve/metrics.py); needs a key when the service has keys."""
        body, content_type = exposition()
        return Response(body, media_type=content_type)

    @app.get("/v1/indexes")
    async def indexes() -> dict[str, Any]:
        return {"indexes": pool.summaries()}

    @app.get("/v1/search", response_model=None)
    async def search_one(
        q: Annotated[str, Query(description="Query text.")],
        k: int | None = None,
        index: str | None = None,
        text: bool = True,
        filter: Annotated[str | None, Query(description="A metadata filter, as JSON.")] = None,
        mmr: Annotated[float | None, Query(ge=0, le=1, description="An MMR weight.")] = None,
    ) -> JSONResponse:
        started = time.perf_counter()
        k = check_k(k)
        check_search([q], k)
        served = pool.get(index)
        diversity = as_mmr(mmr)
        restrict = await pool.restriction(served.name, filter, None)
        first = reranking.first_stage_k(False, k, k, diversity)
        rows = await pool.search(served.name, [q], first, text or diversity is not None, None, restrict)
        if diversity is not None:
            rows = await reranking.finish([q], rows, k, text, mmr=diversity, indexes=[served.index])
        return JSONResponse({"index": served.name, "k": k, **answer([q], rows, started)})

    @app.post("/v1/search", response_model=None)
    async def search_many(body: SearchBody) -> JSONResponse:
        started = time.perf_counter()
        if len(body.queries) > settings.max_queries:
            raise ApiError(413, f"{len(body.queries)} queries; at most {settings.max_queries} per request")
        check_search(body.queries, body.k)
        names = pool.names(body.index, body.indexes)
        check_caps(body, fused=len(names) > 1)
        check_retrieval(len(names) - 1, body.fusion, body.weights)
        diversity = as_mmr(body.mmr, body.mmr_depth)
        first = reranking.first_stage_k(body.rerank, body.k, body.rerank_depth, diversity)
        second = body.rerank or diversity is not None
        with_text = body.text or second  # the second stages read the text
        restrict = await pool.restriction(names[0], body.filter, body.doc_ids)
        if len(names) > 1:
            depth = max(body.depth, first)
            rows = await pool.fused(
                names,
                body.queries,
                first,
                depth,
                body.rrf_k,
                with_text,
                body.params,
                body.fusion,
                body.weights,
                restrict,
            )
        else:
            rows = await pool.search(names[0], body.queries, first, with_text, body.params, restrict)
        if second:
            depth = body.rerank_depth if body.rerank else None
            searched = [pool.get(name).index for name in names]
            rows = await reranking.finish(body.queries, rows, body.k, body.text, depth, diversity, searched)
        where = {"indexes": names, "fused": body.fusion} if len(names) > 1 else {"index": names[0]}
        reranked = {"reranked_by": reranking.spec} if body.rerank else {}
        reranked |= {"mmr": asdict(diversity)} if diversity is not None else {}
        return JSONResponse({**where, "k": body.k, **reranked, **answer(body.queries, rows, started)})

    @app.get("/v1/doc/{doc_id:path}")
    async def document(doc_id: str, index: str | None = None) -> dict[str, Any]:
        served = pool.get(index)
        doc = (await pool.documents(served.name, [doc_id])).get(doc_id)
        if doc is None:
            raise ApiError(404, f"no document '{doc_id}' in index '{served.name}'")
        return {
            "index": served.name,
            "doc_id": doc.id,
            "title": doc.title,
            "text": doc.text,
            "metadata": doc.metadata,
        }

    @app.get("/v1/similar/{doc_id:path}", response_model=None)
    async def more_like(
        doc_id: str, index: str | None = None, k: int | None = None, text: bool = True
    ) -> JSONResponse:
        """The documents most like one of the index's own (retrieval/similar.py)."""
        started = time.perf_counter()
        k = check_k(k)
        check_search([], k)
        served = pool.get(index)
        doc = (await pool.documents(served.name, [doc_id])).get(doc_id)
        if doc is None:
            raise ApiError(404, f"no document '{doc_id}' in index '{served.name}'")
        hits = await pool.run(served, similar, served.index, doc_id, k, text)
        return JSONResponse(
            {"index": served.name, "doc_id": doc_id, "k": k, **answer([doc.title], [hits], started)}
        )

    @app.post("/v1/rag", response_model=None)
    async def rag_answer(body: RagBody) -> Response:
        check_caps(body, fused=len(pool.names(body.index, body.indexes)) > 1)
        return await rag.answer(body)

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completion(body: ChatBody) -> Response:
        check_caps(body, fused=len(body.indexes or ()) > 1)
        return await chat.complete(body)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return chat.models()

    @app.get("/v1/models/{model:path}")
    async def model(model: str) -> dict[str, Any]:
        """OpenAI's `models.retrieve`: one served index, as /v1/models lists it."""
        return chat.model(model)

    @app.post("/v1/embeddings", response_model=None)
    async def embeddings_answer(body: EmbeddingsBody) -> JSONResponse:
        return JSONResponse(await embeddings.embed(body))

    @app.post("/v1/rerank")
    async def rerank_texts(body: RerankBody) -> dict[str, Any]:
        return await reranking.rerank_texts(body, settings.max_k)

    @app.post("/v1/indexes/{name}/documents")
    async def add_documents(name: str, body: DocumentsBody) -> dict[str, Any]:
        return await writes.add(name, body)

    @app.post("/v1/indexes/{name}/delete")
    async def delete_documents(name: str, body: DeleteBody) -> dict[str, Any]:
        return await writes.delete(name, body)

    return app


def app_from_env() -> FastAPI:
    """The app of the settings in the environment: what each `--workers` process builds."""
    return create_app(ServeSettings.from_env())
