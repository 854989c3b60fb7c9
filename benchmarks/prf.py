"""Does pseudo-relevance feedback help BM25 (RM3, Rocchio) and MiniLM (vector Rocchio), alone
and in the RRF hybrid, on collections it was not chosen on?

Feedback needs no training, so every judged query of each original collection is scored
(Cranfield 225, CISI 76, MEDLINE 30, LISA 35), not only a test split. Every method runs with its
published settings: BM25's with Anserini's (10 terms from the top 10 documents; RM3 keeps the
original query at weight 0.5, Rocchio alpha 1, beta 0.75), MiniLM's with Li et al.'s vector
Rocchio (the top 5 documents' vectors, alpha 0.4, beta 0.6; `retrieval/vector_prf.py`). Nothing
is tuned: the choice collections answer only whether to turn a method on by default, and the
confirmation collections say whether that holds.

Per collection: nDCG@10, R@1000 and AP of each system ± its standard error over queries; / the
baseline (BM25 for BM25 rows, MiniLM for MiniLM rows, the RRF(BM25, MiniLM) anchor for the
hybrids) and the per-query difference ± its paired standard error with Fisher's randomization
p; each single run's search time per query (1000 hits, batched as `tessera search --queries`
does, the best of REPEATS). Then the mean ratio over each set of collections.

    TESSERA_DATA_DIR=../shared/data python benchmarks/prf.py --work /tmp/prf
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
from tessera.eval.evaluate import per_query_scores
from tessera.eval.runs import retrieve
from tessera.eval.significance import mean_se, paired_p_value
from tessera.retrieval.fusion import fuse
from tessera.retrieval.index import Index

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rerank import built_indexes  # noqa: E402  (the BM25 and MiniLM indexes every such benchmark shares)

METRICS = ["nDCG@10", "R@1000", "AP"]
DEPTH = 1000
SINGLE = {  # name -> (index, search parameters)
    "BM25": ("bm25", {}),
    "BM25+RM3": ("bm25", {"prf": "rm3"}),
    "BM25+Rocchio": ("bm25", {"prf": "rocchio"}),
    "MiniLM": ("minilm", {}),
    "MiniLM+PRF": ("minilm", {"prf_depth": 5}),
}
FUSED = [
    ("BM25", "MiniLM"),  # the anchor
    ("BM25+RM3", "MiniLM"),
    ("BM25+Rocchio", "MiniLM"),
    ("BM25", "MiniLM+PRF"),
    ("BM25+Rocchio", "MiniLM+PRF"),
]
ANCHOR = "RRF(BM25, MiniLM)"
REPEATS = 5


def baseline_of(name: str) -> str:
    return ANCHOR if name.startswith("RRF") else "MiniLM" if name.startswith("MiniLM") else "BM25"


def runs_of(collection: str, work: Path, console: Console) -> tuple[dict, object, dict[str, float]]:
    """{system: run} over every judged query of `collection` (an ir_datasets id), its dataset,
    and each single run's milliseconds per query."""
    data = load_eval_dataset(collection)
    root = work / collection.replace("/", "-")
    built_indexes(collection, root, console)
    runs, seconds = {}, {}
    for name, (encoder, params) in SINGLE.items():
        index = Index.load(root / encoder, search_params=params)
        seconds[name] = float("inf")
        for _ in range(REPEATS):  # the best of a few: the first also warms the JVM and the encoder
            started = time.perf_counter()
            runs[name] = retrieve(index, data, DEPTH, False)
            seconds[name] = min(seconds[name], time.perf_counter() - started)
    for pair in FUSED:
        runs[f"RRF({pair[0]}, {pair[1]})"] = fuse([runs[n] for n in pair], "rrf", depth=DEPTH, top=DEPTH)
    return runs, data, {name: 1000 * s / len(data.queries) for name, s in seconds.items()}


def table_of(collection: str, scores: dict[str, dict[str, dict[str, float]]], ms: dict[str, float]) -> Table:
    queries = list(scores["BM25"]["nDCG@10"])
    table = Table(title=f"{collection}: {len(queries)} judged queries")
    table.add_column("system")
    for metric in METRICS:
        table.add_column(f"{metric} ± SE", justify="right")
        table.add_column("/ base", justify="right")
    table.add_column("Δ nDCG@10 ± paired SE (p)", justify="right")
    table.add_column("ms/query", justify="right")
    for name, by_metric in scores.items():
        base = baseline_of(name)
        cells = []
        for metric in METRICS:
            values = np.array([by_metric[metric][q] for q in queries])
            reference = np.array([scores[base][metric][q] for q in queries])
            mean, se = mean_se(values)
            cells += [
                f"{mean:.4f} ± {se:.3f}",
                f"{mean / reference.mean():.3f}x" if reference.mean() else "–",
            ]
        delta = ""
        if name != base:
            system = np.array([by_metric["nDCG@10"][q] for q in queries])
            reference = np.array([scores[base]["nDCG@10"][q] for q in queries])
            d, d_se = mean_se(system - reference)
            delta = f"{d:+.4f} ± {d_se:.4f} (p {paired_p_value('fisher', reference, system):.3f})"
        table.add_row(name, *cells, delta, f"{ms[name]:.1f}" if name in ms else "")
    return table


def summary(ratios: dict[str, dict[str, float]], choose: list[str], confirm: list[str]) -> Table:
    table = Table(title="nDCG@10 / baseline, mean over each set of collections")
    table.add_column("system")
    for label in ("choice", "confirmation"):
        table.add_column(f"mean, {label}", justify="right")
    systems = [name for name in next(iter(ratios.values())) if name != baseline_of(name)]
    for name in systems:
        means = [np.mean([ratios[c][name] for c in group if c in ratios]) for group in (choose, confirm)]
        table.add_row(name, *(f"{m:.3f}x" for m in means))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--choose", nargs="+", default=["cranfield", "glasgow/cisi"])
    parser.add_argument("--confirm", nargs="*", default=["glasgow/medline", "glasgow/lisa"])
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "benchmarks" / "bm25-prf")
    args = parser.parse_args()
    console = Console(width=200)
    ratios = {}
    for collection in [*args.choose, *args.confirm]:
        runs, data, ms = runs_of(collection, args.work, console)
        scores = {name: per_query_scores(run, data, METRICS) for name, run in runs.items()}
        console.print(table_of(collection, scores, ms))
        ndcg = {name: np.mean(list(by_metric["nDCG@10"].values())) for name, by_metric in scores.items()}
        ratios[collection] = {name: value / ndcg[baseline_of(name)] for name, value in ndcg.items()}
    console.print(summary(ratios, args.choose, args.confirm))


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
