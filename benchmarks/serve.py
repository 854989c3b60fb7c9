"""Question: what does `tessera serve` cost over calling the Python API, and what does
micro-batching buy under concurrent clients?

    python benchmarks/serve.py [--index DIR] [--clients 1 8 32] [--torch-threads 1] [--json out.json]

One MiniLM Flat index of Cranfield (built under TESSERA_CACHE_DIR/benchmarks/serve unless
`--index`), Cranfield's 225 queries, k=10, ids and scores only (`text=false`, the work
`batch_search` does). Baselines in this process: `Index.search` one query after another, and one
`Index.batch_search` over all queries (the ceiling micro-batching can reach). Then `tessera serve`
in a subprocess, micro-batching on (`--max-batch 64`) and off (`--max-batch 1`), each hit by 1, 8
and 32 concurrent HTTP clients (keep-alive, loopback) sending one pass over the queries after a
warm-up, `--repeats` times. QPS, p50 and p99 latency per request (medians over repeats); the
`x batch_search` ratio of each run is against a batch_search measured just before it, so both
see the same load from neighbours on shared cores.

`--torch-threads` (OMP_NUM_THREADS, here and in the server): on cores shared with other work a
two-thread torch team stalls at every barrier when the other core is busy, so the default is 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

from rich.console import Console
from rich.table import Table

from tessera import config
from tessera.cli import at_least


def percentiles(latencies: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(latencies, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


def in_process(index, queries: list[str], k: int) -> dict[str, dict]:
    """Sequential Index.search over the queries (latency per query), and its QPS."""
    latencies = []
    started = time.perf_counter()
    for q in queries:
        t = time.perf_counter()
        index.search(q, k)
        latencies.append(time.perf_counter() - t)
    p50, p99 = percentiles(latencies)
    return {"qps": len(queries) / (time.perf_counter() - started), "p50_ms": p50, "p99_ms": p99}


def batch_qps(index, queries: list[str], k: int) -> float:
    """One Index.batch_search over all the queries: the ceiling micro-batching can reach."""
    started = time.perf_counter()
    index.batch_search(queries, k)
    return len(queries) / (time.perf_counter() - started)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    index_dir: Path, max_batch: int, window_ms: float, env: dict
) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_port()
    command = [sys.executable, "-c", "from tessera.cli import main; main()", "serve", str(index_dir)]
    command += ["--port", str(port), "--max-batch", str(max_batch), "--batch-window-ms", str(window_ms)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return server, url
        except httpx.TransportError:
            pass
        if server.poll() is not None:
            raise SystemExit(f"tessera serve exited with {server.returncode}")
        time.sleep(0.2)
    server.kill()
    raise SystemExit("tessera serve did not become ready in 180 s")


class Connection:
    """A minimal HTTP/1.1 keep-alive GET client on asyncio streams: the load generator shares the
    cores with the server, so it should cost as little as it can (`--client httpx` for httpx)."""

    def __init__(self, url: str) -> None:
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)

    async def __aenter__(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *_) -> None:
        self.writer.close()

    async def get(self, path: str) -> tuple[int, bytes]:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length: *(\d+)", head)
        return int(head[9:12]), await self.reader.readexactly(int(length.group(1)) if length else 0)


async def load(url: str, queries: list[str], clients: int, k: int, client: str = "raw") -> dict:
    """`clients` concurrent clients share one pass over the queries, one request at a time each."""
    import httpx

    todo = list(queries)
    latencies: list[float] = []
    failures = 0

    def ok(status: int, body: bytes) -> bool:
        return status == 200 and len(json.loads(body)["results"][0]["hits"]) == k

    async def one_client(get) -> None:
        nonlocal failures
        while todo:
            path = f"/v1/search?{urlencode({'q': todo.pop(), 'k': k, 'text': 'false'})}"
            t = time.perf_counter()
            try:
                good = ok(*await get(path))
            except (OSError, asyncio.IncompleteReadError, httpx.HTTPError):
                good = False
            latencies.append(time.perf_counter() - t)
            failures += not good

    async def raw_client() -> None:
        async with Connection(url) as connection:
            await one_client(connection.get)

    started = time.perf_counter()
    if client == "raw":
        await asyncio.gather(*(raw_client() for _ in range(clients)))
    else:
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as session:

            async def get(path: str) -> tuple[int, bytes]:
                response = await session.get(path)
                return response.status_code, response.content

            await asyncio.gather(*(one_client(get) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    p50, p99 = percentiles(latencies)
    return {
        "requests": len(latencies),
        "failures": failures,
        "qps": len(latencies) / elapsed,
        "p50_ms": p50,
        "p99_ms": p99,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--index", type=Path, help="A dense index (default: Cranfield MiniLM Flat, built once)."
    )
    parser.add_argument(
        "--queries", type=Path, help="queries.jsonl (default: Cranfield's, from TESSERA_DATA_DIR)."
    )
    parser.add_argument("--clients", type=at_least(1), nargs="+", default=[1, 8, 32])
    parser.add_argument("-k", type=at_least(1), default=10)
    parser.add_argument("--window-ms", type=float, default=2.0)
    parser.add_argument("--torch-threads", type=at_least(1), default=1)
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw", help="The load generator.")
    parser.add_argument("--repeats", type=at_least(1), default=3, help="Runs per row (medians reported).")
    parser.add_argument("--json", type=Path, help="Write every measurement here.")
    args = parser.parse_args()

    os.environ["OMP_NUM_THREADS"] = str(args.torch_threads)  # before torch loads, here and in the server
    index_dir = args.index or config.cache_dir() / "benchmarks" / "serve" / "cran-minilm"
    if not (index_dir / "manifest.json").is_file():
        from tessera.indexing.builder import build_index

        build_index("cranfield", index_dir, encoder="minilm")
    query_file = args.queries or config.data_dir() / "cranfield-beir" / "queries.jsonl"
    queries = [json.loads(line)["text"] for line in query_file.read_text().splitlines() if line.strip()]

    from tessera.retrieval.index import Index

    index = Index.load(index_dir)
    index.batch_search(queries[:64], args.k)  # warm-up
    results: dict = {"sequential Index.search": in_process(index, queries, args.k), "served": {}}
    ceilings: list[float] = []
    for mode, max_batch in (("batching on", 64), ("batching off", 1)):
        server, url = start_server(index_dir, max_batch, args.window_ms, os.environ.copy())
        try:
            asyncio.run(load(url, queries[:64], 8, args.k, args.client))  # warm-up
            for clients in args.clients:
                runs = []
                for _ in range(args.repeats):  # the ceiling measured next to each run: same neighbours
                    ceiling = batch_qps(index, queries, args.k)
                    ceilings.append(ceiling)
                    runs.append(
                        {**asyncio.run(load(url, queries, clients, args.k, args.client)), "ceiling": ceiling}
                    )
                results["served"][f"{mode}, {clients} clients"] = summarize(runs)
        finally:
            server.terminate()
            server.wait(30)
    results["one Index.batch_search"] = {"qps": statistics.median(ceilings), "runs": ceilings}
    report(results, len(queries), args)


def summarize(runs: list[dict]) -> dict:
    """Medians over repeats; the ratio is each run's QPS over the ceiling measured just before it."""
    return {
        "requests": sum(r["requests"] for r in runs),
        "failures": sum(r["failures"] for r in runs),
        "qps": statistics.median(r["qps"] for r in runs),
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "x_batch_search": statistics.median(r["qps"] / r["ceiling"] for r in runs),
        "runs": runs,
    }


def report(results: dict, n: int, args: argparse.Namespace) -> None:
    ceiling = results["one Index.batch_search"]["qps"]
    sequential = results["sequential Index.search"]["qps"]
    title = (
        f"tessera serve: {n} queries, k={args.k}, torch threads {args.torch_threads}, {args.client} client, "
        f"median of {args.repeats}"
    )
    table = Table(title=title)
    columns = (
        "how",
        "requests",
        "failed",
        "QPS",
        "p50 ms",
        "p99 ms",
        "p99/p50",
        "x batch_search",
        "x sequential",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "how" else "right")

    def row(name: str, r: dict) -> None:
        p50, p99 = r.get("p50_ms"), r.get("p99_ms")
        table.add_row(
            name,
            str(r.get("requests", n)),
            str(r.get("failures", 0)),
            f"{r['qps']:.1f}",
            f"{p50:.1f}" if p50 else "",
            f"{p99:.1f}" if p99 else "",
            f"{p99 / p50:.2f}" if p50 else "",
            f"{r.get('x_batch_search', r['qps'] / ceiling):.2f}",
            f"{r['qps'] / sequential:.2f}",
        )

    row("sequential Index.search", results["sequential Index.search"])
    row("one Index.batch_search (median)", results["one Index.batch_search"])
    for name, r in results["served"].items():
        row(name, r)
    Console(width=150).print(table)
    top = results["served"].get(f"batching on, {max(args.clients)} clients")
    if top:
        print(
            f"goal at {max(args.clients)} clients: {top['x_batch_search']:.2f}x batch_search (>= 0.8), "
            f"p99/p50 {top['p99_ms'] / top['p50_ms']:.2f} (< 10), failures "
            f"{sum(r['failures'] for r in results['served'].values())} (0)"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
