"""Prometheus metrics for `tessera serve` at `GET /metrics`, through prometheus_client.

Requests by route template (never the raw path, so ids in paths do not multiply the series),
method and status, their durations; per index the queries searched, the sizes of the micro-batches
they were searched in (how much batching buys under the present load), reloads and live documents.
With `--workers N` each process writes its samples under PROMETHEUS_MULTIPROC_DIR, which the CLI
sets to a fresh folder before any worker starts, and `/metrics` adds them up, so a scrape sees the
whole service whichever worker answers it."""

from __future__ import annotations

import os
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client when it is imported
UNMATCHED = "unmatched"  # a request no route took: 404s, and 401s answered before routing
METHODS = frozenset({"GET", "POST", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})  # others: "other"

REQUESTS = Counter("tessera_http_requests", "HTTP requests answered.", ["method", "route", "status"])
DURATION = Histogram(
    "tessera_http_request_duration_seconds",
    "Time from a request's arrival to its response's last byte (a streamed answer: all of it).",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
QUERIES = Counter("tessera_search_queries", "Queries searched, per index.", ["index"])
BATCH = Histogram(
    "tessera_search_batch_queries",
    "Queries per micro-batch (one batch_search call).",
    ["index"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
RELOADS = Counter("tessera_index_reloads", "Index versions swapped in after a change on disk.", ["index"])
DOCUMENTS = Gauge(
    "tessera_index_documents",
    "Live documents of the served index.",
    ["index"],
    multiprocess_mode="mostrecent",
)


def searched(index: str, queries: int) -> None:
    """One batch_search call of `queries` queries on `index`."""
    QUERIES.labels(index).inc(queries)
    BATCH.labels(index).observe(queries)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, summed over worker processes when there are several."""
    if os.environ.get(MULTIPROCESS_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class RequestMetrics:
    """ASGI middleware, outermost: every HTTP request counted and timed, refused ones included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            route = getattr(scope.get("route"), "path", UNMATCHED)
            method = scope["method"] if scope["method"] in METHODS else "other"  # a bounded label
            REQUESTS.labels(method, route, str(status)).inc()
            DURATION.labels(route).observe(time.perf_counter() - started)
