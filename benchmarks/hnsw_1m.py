"""Question: does an HNSW graph reach recall@10 >= 0.95 of exact search at >= 100x flat's QPS on
1M x 384 vectors, where IVF-PQ with in-memory re-scoring stopped at 0.958 and 58x
(benchmarks/refine_1m.py)? And does the efSearch Tessera tunes at build time hold there?
(issue 15; docs/scaling.md)

    python benchmarks/hnsw_1m.py [--rows 1000000] [--queries 1000] [--kinds HNSW32 HNSW32,SQ8]

Data: the same mixture and seeds as benchmarks/scaling.py and refine_1m.py
(`mixture.clustered`, corpus block i with seed 1,000,000 + i; queries seed 1), generated in
memory. Each kind is built by faiss' `index_factory` (inner product, efConstruction 40, both
cores, added in 50k-row steps with a progress bar), then:
- tuned by `tessera.indexing.tuning.tune` exactly as `tessera index` tunes it (perturbed copies
  of 1,000 corpus rows as queries, recall@10 >= 0.95 against their exact neighbours);
- swept over efSearch with the real queries against their exact top 10 (`faiss.knn`).
QPS = one batch of all queries on ONE faiss thread, best of two; flat = `faiss.knn` over the
in-memory vectors, the same batch on one thread (as refine_1m.py measures it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mixture import DIM, benchmark_queries, corpus_rows, flat_baseline, recall, timed  # noqa: E402

STEP = 50_000
EF_SEARCH = (16, 32, 64, 128, 256)


def build(kind: str, corpus: np.ndarray, progress) -> tuple[faiss.Index, float]:
    index = faiss.index_factory(DIM, kind, faiss.METRIC_INNER_PRODUCT)
    started = time.perf_counter()
    index.train(corpus[: min(len(corpus), 262_144)])
    task = progress.add_task(f"build {kind}", total=len(corpus))
    for start in range(0, len(corpus), STEP):
        index.add(corpus[start : start + STEP])
        progress.advance(task, min(STEP, len(corpus) - start))
    return index, time.perf_counter() - started


def main() -> None:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from tessera.indexing.tuning import tune

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--kinds", nargs="+", default=["HNSW32", "HNSW32,SQ8"])
    args = parser.parse_args()
    console = Console(width=140)

    corpus, queries = corpus_rows(0, args.rows), benchmark_queries(args.queries)
    flat_qps, truth = flat_baseline(corpus, queries)
    console.log(f"flat: {flat_qps:.1f} QPS (one thread)")

    table = Table(title=f"recall@10 and QPS x flat ({flat_qps:.1f} QPS), {args.rows:,} rows, one thread")
    for column in ("index", "build s", "efSearch", "recall@10", "QPS", "x flat"):
        table.add_column(column, justify="right")
    for kind in args.kinds:
        faiss.omp_set_num_threads(2)
        with Progress(console=console) as progress:
            index, build_s = build(kind, corpus, progress)
        tuned, record = tune(index, corpus)
        console.log(f"{kind}: built in {build_s:.0f} s; tuned {tuned} {record}")
        faiss.omp_set_num_threads(1)
        points = sorted({*EF_SEARCH, int(tuned.get("efSearch", EF_SEARCH[0]))})
        for ef in points:
            faiss.ParameterSpace().set_index_parameter(index, "efSearch", ef)
            qps, labels = timed(lambda q, i=index: i.search(q, 10), queries)
            mark = " (tuned)" if ef == tuned.get("efSearch") else ""
            table.add_row(
                kind,
                f"{build_s:.0f}",
                f"{ef}{mark}",
                f"{recall(labels, truth):.3f}",
                f"{qps:,.0f}",
                f"{qps / flat_qps:.0f}x",
            )
        del index
    console.print(table)


if __name__ == "__main__":
    main()
