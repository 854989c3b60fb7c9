"""What do the service's request metrics and API-key check cost per request?

A trivial JSON route called straight through ASGI (no socket, no client), so the middleware's
own time is not hidden under HTTP parsing: bare FastAPI, then with `RequestMetrics` (serve/
metrics.py), then also with `ApiKeyGuard` (serve/auth.py) and a valid key, then a request the
guard refuses. Microseconds per request, median of rounds; ratio to bare.

    python benchmarks/serve_middleware.py [--requests 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from fastapi import FastAPI
from rich.console import Console
from rich.table import Table

from tessera.cli import at_least
from tessera.serve.auth import ApiKeyGuard, digest
from tessera.serve.metrics import RequestMetrics

KEY = "benchmark-key-0123456789"


def build(metrics: bool, guard: bool) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    if guard:
        app.add_middleware(ApiKeyGuard, digests=[digest(KEY)])
    if metrics:
        app.add_middleware(RequestMetrics)
    return app


async def call(app: FastAPI, headers: list[tuple[bytes, bytes]]) -> int:
    """One GET /v1/ping through the ASGI interface; its status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/v1/ping",
        "raw_path": b"/v1/ping",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
    }
    status = 0

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def per_request_us(app: FastAPI, headers: list, requests: int, expect: int) -> float:
    assert await call(app, headers) == expect  # also builds the middleware stack before timing
    started = time.perf_counter()
    for _ in range(requests):
        await call(app, headers)
    return (time.perf_counter() - started) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=at_least(1), default=20000)
    parser.add_argument("--rounds", type=at_least(1), default=5)
    args = parser.parse_args()
    bearer = [(b"authorization", f"Bearer {KEY}".encode())]
    cases = [
        ("bare FastAPI route", build(False, False), [], 200),
        ("+ request metrics", build(True, False), [], 200),
        ("+ metrics + API key (valid)", build(True, True), bearer, 200),
        ("+ metrics + API key (refused: 401)", build(True, True), [], 401),
    ]
    times = {name: [] for name, *_ in cases}
    for _ in range(args.rounds):  # interleaved, so drift in the machine's speed hits every case
        for name, app, headers, expect in cases:
            times[name].append(asyncio.run(per_request_us(app, headers, args.requests, expect)))
    bare = statistics.median(times[cases[0][0]])
    title = f"µs per request through ASGI ({args.requests} requests x {args.rounds} rounds, median)"
    table = Table(title=title)
    for column in ("stack", "µs / request", "min–max", "ratio to bare", "added µs"):
        table.add_column(column, justify="left" if column == "stack" else "right")
    for name, *_ in cases:
        median = statistics.median(times[name])
        spread = f"{min(times[name]):.1f}–{max(times[name]):.1f}"
        table.add_row(name, f"{median:.1f}", spread, f"{median / bare:.2f}", f"{median - bare:+.1f}")
    Console().print(table)


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
