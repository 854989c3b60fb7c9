"""Job: the synthetic vectors and the measurements the 1M/10M benchmarks share (latency_1m.py,
scaling.py, refine_1m.py, ann_1m.py), so that every one of them searches the same corpus and
queries and times exact search the same way. numpy and faiss only: no torch.

The mixture: 1,000 Gaussian clusters in a 64-d latent space mapped linearly into 384-d plus a
little isotropic noise, unit-normalised. Real sentence embeddings have a low intrinsic dimension
too; isotropic 384-d noise would make every point's neighbours nearly equidistant and recall
meaningless. Corpus block i (100k rows) is drawn with seed CORPUS_SEED + i, queries with
QUERY_SEED, so the first 1M rows of the 10M corpus are the 1M corpus.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

DIM = 384
LATENT = 64
K = 10
GEN_ROWS = 100_000  # rows per corpus block (one seed each)
CORPUS_SEED = 1_000_000  # corpus block i uses seed CORPUS_SEED + i
QUERY_SEED = 1
TUNING_QUERY_SEED = 2  # held-out queries of the same workload, for `--tune-queries`-style tuning


def clustered(count: int, seed: int) -> np.ndarray:
    """`count` points of the one fixed mixture (the same for corpus and queries)."""
    fixed = np.random.default_rng(0)
    centers = fixed.standard_normal((1000, LATENT)).astype(np.float32)
    mapping = fixed.standard_normal((LATENT, DIM)).astype(np.float32) / np.sqrt(LATENT)
    rng = np.random.default_rng(seed + 1)
    data = np.empty((count, DIM), np.float32)
    for start in range(0, count, GEN_ROWS):
        rows = min(GEN_ROWS, count - start)
        latent = centers[rng.integers(0, 1000, rows)] + 0.5 * rng.standard_normal(
            (rows, LATENT), dtype=np.float32
        )
        data[start : start + rows] = latent @ mapping + 0.05 * rng.standard_normal(
            (rows, DIM), dtype=np.float32
        )
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    return data


def corpus_rows(start: int, count: int) -> np.ndarray:
    """Rows [start, start + count) of the benchmark corpus; `start` is a multiple of GEN_ROWS."""
    if start % GEN_ROWS:
        raise ValueError(f"start {start} is not a multiple of {GEN_ROWS}")
    block = np.empty((count, DIM), np.float32)
    for offset in range(0, count, GEN_ROWS):
        rows = min(GEN_ROWS, count - offset)
        block[offset : offset + rows] = clustered(rows, seed=CORPUS_SEED + (start + offset) // GEN_ROWS)
    return block


def benchmark_queries(count: int) -> np.ndarray:
    return clustered(count, seed=QUERY_SEED)


def tuning_queries(count: int) -> np.ndarray:
    """Queries of the same workload that are never measured: what a user hands `--tune-queries`."""
    return clustered(count, seed=TUNING_QUERY_SEED)


def recall(found: np.ndarray, truth: np.ndarray, k: int = K) -> float:
    """Mean share of each query's true top k found in its top k."""
    return float(np.mean([len(set(a[:k]) & set(b[:k])) / k for a, b in zip(found, truth, strict=True)]))


def timed(search: Callable[[np.ndarray], tuple], queries: np.ndarray) -> tuple[float, np.ndarray]:
    """(QPS, labels) of one batch of all queries: best of two runs."""
    best, labels = float("inf"), None
    for _ in range(2):
        started = time.perf_counter()
        _, labels = search(queries)
        best = min(best, time.perf_counter() - started)
    return len(queries) / best, labels


def flat_baseline(corpus: np.ndarray, queries: np.ndarray) -> tuple[float, np.ndarray]:
    """(QPS, exact top K) of `faiss.knn` over the in-memory corpus, one batch on ONE thread (the
    caller's faiss thread count is restored)."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return timed(lambda q: faiss.knn(q, corpus, K, metric=faiss.METRIC_INNER_PRODUCT), queries)
    finally:
        faiss.omp_set_num_threads(threads)
