"""Question: how fast are Tessera's vector backends at one million 384-d vectors?

    python benchmarks/latency_1m.py [--count 1000000] [--queries 200]

Synthetic clustered vectors (1,000 Gaussian clusters of low intrinsic dimension, unit-normalised,
like sentence embeddings) so that IVF partitions and recall mean something. Each backend is
built by Tessera's own code and queried one query at a time (k=10); the table gives ms/query,
the speed-up over exact flat search, bytes per vector, and recall@10 of the exact top 10. BEBR
binarizers are trained on a 20k sample for 15 epochs (task-agnostic, no labels; brief, since
this table is about speed: docs/results.md has their quality on real collections), then encode
all vectors.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from tessera.cli import at_least
from tessera.indexing.binary_backend import BebrBackend, SignBinaryBackend
from tessera.indexing.faiss_backend import FaissBackend, build_faiss_index
from tessera.training.bebr import train_binarizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mixture import DIM, clustered, recall  # noqa: E402


def per_query(backend, queries: np.ndarray, k: int = 10) -> tuple[float, np.ndarray]:
    backend.search(queries[:5], k)  # warm-up
    labels = []
    start = time.perf_counter()
    for row in queries:
        labels.append(backend.search(row[None, :], k)[1][0])
    return 1000 * (time.perf_counter() - start) / len(queries), np.array(labels)


def backends(vectors: np.ndarray):
    """(name, bytes per vector, builder) for every backend compared."""
    yield "Flat (fp32, exact)", DIM * 4, lambda: FaissBackend(build_faiss_index(vectors, "Flat"))
    yield (
        "IVF4096,PQ48 nprobe=16",
        48,
        lambda: FaissBackend(build_faiss_index(vectors, "IVF4096,PQ48"), {"nprobe": 16}),
    )
    yield (
        "HNSW32 efSearch=64",
        DIM * 4 + 32 * 2 * 4,
        lambda: FaissBackend(build_faiss_index(vectors, "HNSW32"), {"efSearch": 64}),
    )
    yield "binary sign, Hamming", DIM // 8, lambda: SignBinaryBackend.build(vectors)
    sample = vectors[:: max(1, len(vectors) // 20_000)]
    for bits in (1, 2):
        fit = functools.cache(lambda b=bits: train_binarizer(sample, b, epochs=15, show_progress=False)[0])
        sdc = lambda f=fit: BebrBackend.build(f(), vectors, mode="sdc")  # noqa: E731
        yield f"BEBR {bits} bit, SDC", DIM * bits // 8, sdc
        yield (
            f"BEBR {bits} bit, Hamming + rescore 100",
            DIM * bits // 8,
            lambda f=fit: BebrBackend.build(f(), vectors, mode="hamming", rescore=100),
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=at_least(1), default=1_000_000)
    parser.add_argument("--queries", type=at_least(1), default=200)
    args = parser.parse_args()
    console = Console(width=140)
    vectors = clustered(args.count, seed=0)
    queries = clustered(args.queries, seed=1)
    table = Table(title=f"{args.count:,} x {DIM}-d vectors, {args.queries} single queries, k=10")
    for column in ("backend", "bytes/vector", "build s", "ms/query", "speed-up vs flat", "recall@10"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    flat_ms, truth = None, None
    for name, size, build in backends(vectors):
        start = time.perf_counter()
        backend = build()
        build_s = time.perf_counter() - start
        ms, labels = per_query(backend, queries)
        if flat_ms is None:
            flat_ms, truth = ms, labels
        table.add_row(
            name,
            str(size),
            f"{build_s:.1f}",
            f"{ms:.2f}",
            f"{flat_ms / ms:.1f}x",
            f"{recall(labels, truth):.3f}",
        )
        console.log(f"{name}: {ms:.2f} ms/query")
        del backend
    console.print(table)


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
