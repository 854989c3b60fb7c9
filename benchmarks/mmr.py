"""Does MMR (`--mmr WEIGHT`) make a short context less redundant, and what does it cost in
relevant documents found, on collections no setting was chosen on?

Every judged query of each original collection (Cranfield 225, CISI 76, MEDLINE 30, LISA 35),
three first stages (BM25, MiniLM flat, their RRF: the anchor), each ranking's top 40 (MMR's
default depth for k=10) reordered by `retrieval.diversify` at weights 0.9, 0.7 and 0.5 (0.5 is
LangChain's default), weight 1 being the ranking itself. Nothing is tuned: MMR stays off by
default, and the table says what each weight gives up and buys.

Per collection and first stage: nDCG@10 and R@5 (the share of a query's relevant documents in a
5-passage context) ± standard error over queries, / the ranking itself; the nDCG@10 difference ±
paired standard error; `alike@5`, the mean cosine (bundled MiniLM, the space MMR diversifies in)
between the top 5 documents, pair by pair; MMR's milliseconds per query: BM25's candidates are
encoded by MiniLM (cached by text, so only the first weight pays), MiniLM's and the anchor's
vectors read from the MiniLM index (`Index.stored_vectors`), as `search --mmr` does. Then the
mean ratio over the choice and the confirmation collections.

    TESSERA_DATA_DIR=../shared/data python benchmarks/mmr.py [--work DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from tessera import config
from tessera.data.datasets import load_eval_dataset
from tessera.durable import write_text_atomic
from tessera.eval.evaluate import per_query_scores
from tessera.eval.runs import retrieve
from tessera.eval.significance import mean_se
from tessera.retrieval.diversify import Mmr, diversify
from tessera.retrieval.fusion import fuse
from tessera.retrieval.index import Index
from tessera.retrieval.rerank import load_reranker
from tessera.retrieval.rerank.base import hit_text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rerank import built_indexes  # noqa: E402  (the BM25 and MiniLM indexes every such benchmark shares)

K, CONTEXT, DEPTH = 10, 5, 40
WEIGHTS = [0.9, 0.7, 0.5]
METRICS = ["nDCG@10", f"R@{CONTEXT}"]
ANCHOR = "RRF(BM25, MiniLM)"


def alike(hits) -> float:
    """Mean pairwise cosine of the first CONTEXT hits."""
    top = hits[:CONTEXT]
    if len(top) < 2:
        return float("nan")
    vectors = np.stack(load_reranker("minilm").doc_vectors([hit_text(h) for h in top]))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = vectors @ vectors.T
    return float(sims[np.triu_indices(len(top), 1)].mean())


def measure(collection: str, work: Path, console: Console) -> dict:
    """{first stage: {weight: {metric: {qid: value}, "alike": {...}, "ms": float}}}."""
    data = load_eval_dataset(collection)
    root = work / collection.replace("/", "-")
    indexes = {name: Index.load(path) for name, path in built_indexes(collection, root, console).items()}
    runs = {name: retrieve(index, data, DEPTH, False) for name, index in indexes.items()}
    runs[ANCHOR] = fuse([runs["BM25"], runs["MiniLM"]], "rrf", depth=DEPTH, top=DEPTH)
    qids = list(data.queries)
    # the indexes each stage searched: MiniLM's hold MMR's vectors, BM25's hits are encoded
    searched = {"BM25": [indexes["BM25"]], "MiniLM": [indexes["MiniLM"]], ANCHOR: list(indexes.values())}
    out: dict = {}
    for stage, run in runs.items():
        texts = indexes["BM25"].with_text([run[q] for q in qids])  # one doc store, one text
        out[stage] = {}
        for weight in [1.0, *WEIGHTS]:
            started = time.perf_counter()
            rows = texts if weight == 1.0 else diversify(Mmr(weight, DEPTH), texts, K, searched[stage])
            ms = 1000 * (time.perf_counter() - started) / len(qids)
            top = {q: [h.without_text() for h in row[:K]] for q, row in zip(qids, rows, strict=True)}
            scores = per_query_scores(top, data, METRICS)
            scores["alike"] = {q: alike(row) for q, row in zip(qids, rows, strict=True)}
            out[stage][str(weight)] = {**scores, "ms": ms}
        console.print(f"{collection}: {stage} done")
    return out


def table_of(collection: str, result: dict) -> Table:
    table = Table(title=f"{collection}: MMR over the top {DEPTH}")
    table.add_column("first stage")
    table.add_column("weight", justify="right")
    for metric in METRICS:
        table.add_column(f"{metric} ± SE", justify="right")
        table.add_column("/ ranking", justify="right")
    table.add_column("Δ nDCG@10 ± paired SE", justify="right")
    table.add_column(f"alike@{CONTEXT}", justify="right")
    table.add_column("MMR ms/query", justify="right")
    for stage, by_weight in result.items():
        base = by_weight["1.0"]
        qids = list(base["nDCG@10"])
        for weight, got in by_weight.items():
            cells = []
            for metric in METRICS:
                values = np.array([got[metric][q] for q in qids])
                mean, se = mean_se(values)
                reference = np.mean([base[metric][q] for q in qids])
                cells += [f"{mean:.4f} ± {se:.3f}", f"{mean / reference:.3f}x" if reference else "–"]
            delta = ""
            if weight != "1.0":
                d, d_se = mean_se(np.array([got["nDCG@10"][q] - base["nDCG@10"][q] for q in qids]))
                delta = f"{d:+.4f} ± {d_se:.4f}"
            alikeness = np.nanmean(list(got["alike"].values()))
            ms = f"{got['ms']:.0f}" if weight != "1.0" else ""
            table.add_row(stage if weight == "1.0" else "", weight, *cells, delta, f"{alikeness:.3f}", ms)
    return table


def summary(results: dict, choose: list[str], confirm: list[str]) -> Table:
    table = Table(title="/ the ranking itself, mean over each set of collections (nDCG@10, R@5; alike@5 Δ)")
    table.add_column("first stage")
    table.add_column("weight", justify="right")
    for label in ("choice", "confirmation"):
        table.add_column(label, justify="right")
    first = next(iter(results.values()))
    for stage in first:
        for weight in map(str, WEIGHTS):
            cells = []
            for group in (choose, confirm):
                ratios = {m: [] for m in METRICS}
                gaps = []
                for c in (c for c in group if c in results):
                    base, got = results[c][stage]["1.0"], results[c][stage][weight]
                    for m in METRICS:
                        reference = np.mean(list(base[m].values()))
                        ratios[m].append(np.mean(list(got[m].values())) / reference if reference else np.nan)
                    gaps.append(
                        np.nanmean(list(got["alike"].values())) - np.nanmean(list(base["alike"].values()))
                    )
                cells.append(
                    " ".join(f"{np.nanmean(ratios[m]):.3f}x" for m in METRICS) + f" ({np.mean(gaps):+.3f})"
                )
            table.add_row(stage, weight, *cells)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--choose", nargs="+", default=["cranfield", "glasgow/cisi"])
    parser.add_argument("--confirm", nargs="*", default=["glasgow/medline", "glasgow/lisa"])
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "benchmarks" / "mmr")
    parser.add_argument("--json", type=Path, default=None, help="write every per-query value here")
    args = parser.parse_args()
    console = Console(width=200)
    results = {}
    for collection in [*args.choose, *args.confirm]:
        results[collection] = measure(collection, args.work, console)
        console.print(table_of(collection, results[collection]))
    console.print(summary(results, args.choose, args.confirm))
    if args.json is not None:
        write_text_atomic(args.json, json.dumps(results, indent=1))


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
