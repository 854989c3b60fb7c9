"""Does weighting the title field (`bm25:title=W`) help BM25, alone and fused with MiniLM?

Tessera's Lucene index holds each document's title + text in `contents` and, since this
benchmark's session, the title again in its own field; `title=W` adds W times the title field's
BM25 score to the contents score (Anserini's multi-field search, what pyserini's BEIR
"multifield" runs do). Every judged query of the original collections (BM25 learns nothing from
them); the weight is chosen on the `--choose` collections by BM25's mean nDCG@10 ratio to
`title=0` alone, among the weights that do not lower the RRF(BM25, MiniLM) hybrid there, then
read on the `--confirm` collections. MEDLINE has no titles, so every weight must leave it
exactly as it is (printed as a check).

Per collection: each weight's nDCG@10 and R@100 ± SE, / `title=0`, the paired difference ± SE
and its p (Fisher randomization), alone and in the hybrid, and what a query costs (milliseconds,
one at a time, top 10); then the means over each set.

    TESSERA_DATA_DIR=../shared/data python benchmarks/bm25_title.py [--work DIR] [--param prf=rocchio]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from tessera import config
from tessera.data.datasets import load_eval_dataset
from tessera.eval.runs import retrieve
from tessera.retrieval.index import Index
from tessera.retrieval.params import parse_params

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bm25_settings import (  # noqa: E402
    DEPTH,
    USES,
    add_set_columns,
    alone_and_fused,
    comparison,
    ratio,
    set_cells,
    titled_bm25,
)
from rerank import built_indexes  # noqa: E402  (the MiniLM index these benchmarks share)

WEIGHTS = [0.0, 0.1, 0.25, 0.5, 1.0]


def name_of(weight: float) -> str:
    return f"title={weight:g}"


def measure(collection: str, root: Path, weights: list[float], console: Console, params: dict) -> dict:
    """{"alone"|"hybrid": {weight: {metric: {query: value}}}} for one collection; `params`: other
    BM25 settings applied at every weight (`--param prf=rocchio`)."""
    data = load_eval_dataset(collection)
    bm25 = titled_bm25(collection, root, console)
    dense = retrieve(Index.load(built_indexes(collection, root, console)["MiniLM"]), data, DEPTH, False)
    out: dict = {"alone": {}, "hybrid": {}, "ms": {}}
    for weight in weights:
        index = Index.load(bm25, search_params={**params, "title": weight})
        for _ in range(2):  # the first pass warms the JVM up (else the first weight pays for it)
            started = time.perf_counter()
            for text in data.queries.values():  # one query at a time, as `tessera search` sends them
                index.search(text, k=10)
        out["ms"][weight] = 1000 * (time.perf_counter() - started) / len(data.queries)
        _, out["alone"][weight], out["hybrid"][weight] = alone_and_fused(index, data, dense)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--choose", nargs="+", default=["cranfield", "glasgow/cisi"])
    parser.add_argument("--confirm", nargs="*", default=["glasgow/lisa", "glasgow/medline"])
    parser.add_argument("--weights", nargs="+", type=float, default=WEIGHTS)
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "benchmarks" / "rerank")
    parser.add_argument("--param", action="append", default=[], help="another BM25 setting, NAME=VALUE")
    args = parser.parse_args()
    params = parse_params(args.param)
    console = Console(width=200)
    weights = sorted({0.0, *args.weights})
    collections = [*args.choose, *args.confirm]
    measured = {c: measure(c, args.work / c.replace("/", "-"), weights, console, params) for c in collections}
    ratios = {
        use: {c: {w: ratio(measured[c][use], w, 0.0) for w in weights} for c in collections} for use in USES
    }
    for c in collections:
        for use, label in USES.items():
            rows = {f"{label} {name_of(w)}": measured[c][use][w] for w in weights}
            console.print(comparison(f"{c}, {label}", rows, f"{label} {name_of(0.0)}"))
        ms = ", ".join(f"{name_of(w)} {measured[c]['ms'][w]:.2f}" for w in weights)
        console.print(f"{c}: milliseconds per query, one at a time, top 10: {ms}")
        if all(measured[c]["alone"][w] == measured[c]["alone"][0.0] for w in weights):
            console.print(f"{c}: every weight gives exactly title=0's scores (no document has a title)")

    def choice_mean(use: str, weight: float) -> float:
        return float(np.mean([ratios[use][c][weight] for c in args.choose]))

    allowed = [w for w in weights if choice_mean("hybrid", w) >= 1.0]
    chosen = max(allowed, key=lambda w: choice_mean("alone", w))
    console.print(
        f"chosen on {', '.join(args.choose)}: {name_of(chosen)} (the best alone among the weights "
        f"whose hybrid is not below title=0's there): mean ratio alone {choice_mean('alone', chosen):.4f}, "
        f"fused {choice_mean('hybrid', chosen):.4f}"
    )
    groups = {"choice": args.choose, "confirmation": args.confirm}
    summary = Table(title="nDCG@10 / title=0: mean over each set (min over its collections)")
    summary.add_column("weight")
    add_set_columns(summary, groups)
    for w in weights:
        summary.add_row(name_of(w) + (" (chosen)" if w == chosen else ""), *set_cells(ratios, groups, w))
    console.print(summary)


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
