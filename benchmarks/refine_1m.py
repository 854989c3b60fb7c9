"""Question: with the candidates re-scored in memory by faiss (IndexRefine over SQ8 codes)
instead of from disk shards, does an IVF first stage reach recall@10 >= 0.95 of exact search
at >= 100x flat's QPS on 1M x 384 vectors? (issue 15; docs/scaling.md)

    python benchmarks/refine_1m.py [--rows 1000000] [--queries 1000]

Data: the same mixture as benchmarks/scaling.py (`mixture.clustered`, corpus block i with
seed 1,000,000 + i; queries seed 1), generated in memory. One coarse quantizer (4,096 lists,
k-means on a 262,144-row seeded sample) is shared by three first stages: IVF-PQ48 (8-bit),
IVF-PQ48x4 and IVF-PQ96x4 fast-scan (4-bit, SIMD), each wrapped in `IndexRefine` with an SQ8
copy of the vectors (384 B/row) that re-scores k_factor x 10 candidates. QPS = one batch of all
queries on ONE faiss thread, best of two; flat = `faiss.knn` over the in-memory vectors, the
same batch on one thread.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mixture import DIM, benchmark_queries, corpus_rows, flat_baseline, recall, timed  # noqa: E402

NLIST, SAMPLE = 4096, 262_144
STAGES = {
    "IVF4096,PQ48": lambda q: faiss.IndexIVFPQ(q, DIM, NLIST, 48, 8, faiss.METRIC_INNER_PRODUCT),
    "IVF4096,PQ48x4fs": lambda q: faiss.IndexIVFPQFastScan(q, DIM, NLIST, 48, 4, faiss.METRIC_INNER_PRODUCT),
    "IVF4096,PQ96x4fs": lambda q: faiss.IndexIVFPQFastScan(q, DIM, NLIST, 96, 4, faiss.METRIC_INNER_PRODUCT),
}


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    from tessera.cli import at_least

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=at_least(1), default=1_000_000)
    parser.add_argument("--queries", type=at_least(1), default=1000)
    args = parser.parse_args()
    console = Console(width=140)

    corpus, queries = corpus_rows(0, args.rows), benchmark_queries(args.queries)
    flat_qps, truth = flat_baseline(corpus, queries)
    console.log(f"flat: {flat_qps:.1f} QPS (one thread)")

    faiss.omp_set_num_threads(2)
    sample = corpus[
        np.sort(np.random.default_rng(0).choice(args.rows, min(SAMPLE, args.rows), replace=False))
    ]
    kmeans = faiss.Kmeans(DIM, NLIST, niter=10, seed=0)
    kmeans.train(sample)
    table = Table(title=f"recall@10 and QPS x flat ({flat_qps:.1f} QPS), {args.rows:,} rows, one thread")
    for column in ("first stage", "nprobe", "k_factor", "candidates", "recall@10", "QPS", "x flat"):
        table.add_column(column, justify="right")
    for name, make in STAGES.items():
        quantizer = faiss.IndexFlatIP(DIM)
        quantizer.add(kmeans.centroids)
        base = make(quantizer)
        base.train(sample)
        index = faiss.IndexRefine(
            base, faiss.IndexScalarQuantizer(DIM, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        )
        index.train(sample)
        index.add(corpus)
        faiss.omp_set_num_threads(1)
        for nprobe in (4, 8, 16, 32):
            for k_factor in (1, 5, 10, 20):
                base.nprobe, index.k_factor = nprobe, k_factor
                qps, labels = timed(partial(index.search, k=10), queries)
                table.add_row(
                    name,
                    str(nprobe),
                    str(k_factor),
                    str(10 * k_factor),
                    f"{recall(labels, truth):.3f}",
                    f"{qps:,.0f}",
                    f"{qps / flat_qps:.0f}x",
                )
        faiss.omp_set_num_threads(2)
        console.log(f"{name} done")
    console.print(table)


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
