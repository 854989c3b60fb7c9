"""Question: which faiss index kinds reach recall@10 >= 0.95 of exact search at >= 100x flat's
QPS on 1M x 384 vectors, and does the default Tessera tunes at build time land there?
(issue 15; docs/scaling.md, "Kinds that reach 100x")

    python benchmarks/ann_1m.py [--rows 1000000] [--queries 1000] [--kinds KIND ...]

Data: the same mixture and seeds as benchmarks/scaling.py and refine_1m.py
(`mixture.clustered`, corpus block i with seed 1,000,000 + i; queries seed 1), generated in
memory. Each kind is built by faiss' `index_factory` as `tessera index --index KIND` builds it
(inner product; trained on the first 262,144 rows; added in 50k-row steps; both cores), then:
- tuned by `tessera.indexing.tuning.tune` exactly as `tessera index` tunes it (perturbed copies
  of 1,000 corpus rows as queries, recall@10 >= 0.95 against their exact neighbours): the
  "tuned" row is the real queries at that default;
- tuned again as `tessera index --tune-queries FILE` tunes it, on 1,000 held-out queries of the
  workload (the mixture, seed 2; the measured queries are seed 1): the "tuned on queries" row;
- swept with the real queries against their exact top 10 (`faiss.knn`): efSearch for HNSW;
  nprobe, and k_factor_rf where the kind re-scores (`...,RFlat`), for IVF.
QPS = one batch of all queries on ONE faiss thread, best of two. Flat = `faiss.knn` over the
in-memory vectors, the same batch on one thread, timed just before and just after each kind:
each kind's ratios are to the mean of those two (the shared cores' speed drifts by 2x within an
hour, so only same-moment ratios compare).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mixture import DIM, benchmark_queries, corpus_rows, flat_baseline, recall, timed, tuning_queries  # noqa: E402

STEP = 50_000
TRAIN_ROWS = 262_144
TARGET, GOAL_X = 0.95, 100
EF_SEARCH = (16, 32, 64, 128, 256)
NPROBES = (2, 3, 4, 5, 6, 8, 12, 16)
K_FACTORS = (1, 2, 4, 8)
DEFAULT_KINDS = ("IVF4096,Flat", "IVF4096_HNSW32,SQ8,RFlat", "IVF4096,RaBitQ,RFlat", "IVF4096,RaBitQfs,RFlat")


def build(kind: str, corpus: np.ndarray, progress) -> tuple[faiss.Index, float]:
    index = faiss.index_factory(DIM, kind, faiss.METRIC_INNER_PRODUCT)
    started = time.perf_counter()
    index.train(corpus[: min(len(corpus), TRAIN_ROWS)])
    task = progress.add_task(f"build {kind}", total=len(corpus))
    for start in range(0, len(corpus), STEP):
        index.add(corpus[start : start + STEP])
        progress.advance(task, min(STEP, len(corpus) - start))
    return index, time.perf_counter() - started


def grid(index: faiss.Index) -> list[dict[str, int]]:
    """Every search setting swept for this kind."""
    from tessera.indexing.tuning import has_refine, tunable_parameter

    name = tunable_parameter(index)
    if name == "efSearch":
        return [{"efSearch": ef} for ef in EF_SEARCH]
    factors = K_FACTORS if has_refine(index) else (None,)
    return [{"nprobe": p} | ({"k_factor_rf": f} if f else {}) for p, f in itertools.product(NPROBES, factors)]


def describe(setting: dict[str, int]) -> str:
    return " ".join(f"{name}={value}" for name, value in setting.items())


def measure(index: faiss.Index, setting: dict[str, int], queries, truth) -> tuple[float, float]:
    """(recall@10, QPS) of the real queries at `setting`, on one thread."""
    space = faiss.ParameterSpace()
    for name, value in setting.items():
        space.set_index_parameter(index, name, value)
    qps, labels = timed(lambda q: index.search(q, 10), queries)
    return recall(labels, truth), qps


def main() -> None:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from tessera.cli import at_least
    from tessera.indexing.tuning import tune

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=at_least(1), default=1_000_000)
    parser.add_argument("--queries", type=at_least(1), default=1000)
    parser.add_argument("--kinds", nargs="+", default=list(DEFAULT_KINDS))
    args = parser.parse_args()
    console = Console(width=160)

    corpus, queries = corpus_rows(0, args.rows), benchmark_queries(args.queries)
    flat_qps, truth = flat_baseline(corpus, queries)
    console.log(f"flat: {flat_qps:.1f} QPS (one thread)")

    table = Table(title=f"recall@10 and QPS x flat, {args.rows:,} rows, {args.queries} queries, one thread")
    for column in ("index", "build s", "flat QPS", "setting", "recall@10", "QPS", "x flat", "goal"):
        table.add_column(column, justify="right")
    summary = Table(title=f"best setting per kind with recall@10 >= {TARGET}, and the tuned defaults")
    for column in ("index", "best setting", "recall@10", "x flat"):
        summary.add_column(column, justify="right")
    for what in ("tuned default", "tuned on queries"):
        for column in (what, "recall@10", "x flat"):
            summary.add_column(column, justify="right")
    for kind in args.kinds:
        faiss.omp_set_num_threads(2)
        with Progress(console=console) as progress:
            index, build_s = build(kind, corpus, progress)
        tuned, record = tune(index, corpus)
        console.log(f"{kind}: built in {build_s:.0f} s; tuned {tuned}; sweep {record.get('sweep')}")
        on_queries, record = tune(index, corpus, queries=tuning_queries(1000))
        console.log(f"{kind}: tuned on held-out queries {on_queries}; sweep {record.get('sweep')}")
        faiss.omp_set_num_threads(1)
        before, _ = flat_baseline(corpus, queries)
        rows = [("tuned", tuned, *measure(index, tuned, queries, truth))]
        rows += [("tuned on queries", on_queries, *measure(index, on_queries, queries, truth))]
        rows += [("", setting, *measure(index, setting, queries, truth)) for setting in grid(index)]
        after, _ = flat_baseline(corpus, queries)
        flat_now = (before + after) / 2
        for mark, setting, found, qps in rows:
            label = describe(setting) + (f" ({mark})" if mark else "")
            met = found >= TARGET and qps / flat_now >= GOAL_X
            table.add_row(
                kind, f"{build_s:.0f}", f"{flat_now:.1f}", label, f"{found:.3f}", f"{qps:,.0f}",
                f"{qps / flat_now:.0f}x", "met" if met else "",
            )  # fmt: skip
        reaching = [r for r in rows[2:] if r[2] >= TARGET]
        best = max(reaching, key=lambda r: r[3], default=None)
        cells = [
            describe(best[1]) if best else "none",
            f"{best[2]:.3f}" if best else "",
            f"{best[3] / flat_now:.0f}x" if best else "",
        ]
        for _, setting, found, qps in rows[:2]:
            cells += [describe(setting), f"{found:.3f}", f"{qps / flat_now:.0f}x"]
        summary.add_row(kind, *cells)
        del index
    console.print(table)
    console.print(summary)


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
