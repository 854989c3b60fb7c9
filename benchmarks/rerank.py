"""Does a second-stage reranker help, on collections no setting was chosen on?

Two rerankers that need no training and no network run over every judged query of each
original collection (Cranfield 225, CISI 76, MEDLINE 30, LISA 35):
- MiniLM re-scoring BM25's top 100 (`--rerank minilm`): the classic "BM25, then a dense
  re-scorer", which a user without a dense index reaches for;
- query likelihood under the bundled SmolLM2-135M-Instruct (`--rerank qlm`, UPR: Sachan et al.
  2022) over the top 20 of BM25 and of the RRF(BM25, MiniLM) anchor. It costs one LLM forward
  pass per candidate, hence the small depth.
Nothing is tuned: the depths are the usual ones (100 for a bi-encoder, 20 for an LLM).

Per collection: nDCG@10, R@100 and AP ± standard error over queries; / the first stage the
reranker read, and / the RRF anchor; the nDCG@10 difference to the first stage ± its paired
standard error with Fisher's randomization p; reranking milliseconds per query. Then the mean
ratio over each set of collections.

    TESSERA_DATA_DIR=../shared/data python benchmarks/rerank.py --work /tmp/rerank [--rerankers minilm]

Each reranker's scores are kept under --work with the time they took, so a rerun (or another
choice of rows) scores nothing twice.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from tessera import config
from tessera.data.datasets import load_eval_dataset
from tessera.eval.evaluate import per_query_scores
from tessera.eval.runs import retrieve
from tessera.eval.significance import mean_se, paired_p_value
from tessera.indexing.builder import build_index
from tessera.retrieval.fusion import fuse
from tessera.retrieval.index import Index
from tessera.retrieval.query_set import rerank_run
from tessera.retrieval.rerank import load_reranker

METRICS = ["nDCG@10", "R@100", "AP"]
DEPTH = 1000
ANCHOR = "RRF(BM25, MiniLM)"
RERANKED = {  # name -> (first stage, reranker spec, depth)
    "BM25 > MiniLM@100": ("BM25", "minilm", 100),
    "BM25 > QLM@20": ("BM25", "qlm", 20),
    f"{ANCHOR} > QLM@20": (ANCHOR, "qlm", 20),
}


class Memo:
    """A reranker whose (query, passage) scores are kept, so first stages that share candidates
    pay for them once, and on disk (`path`, JSON lines, with the seconds each took), so a rerun
    scores nothing twice and still reports the time it cost."""

    def __init__(self, spec: str, path: Path):
        self.inner = load_reranker(spec)
        self.spec = spec
        self.path = path
        self.scores: dict[tuple[str, str], tuple[float, float]] = {}  # -> (score, seconds)
        if path.is_file():
            for line in path.read_text().splitlines():
                query, text, value, seconds = json.loads(line)
                self.scores[(query, text)] = (value, seconds)
        self.used: set[tuple[str, str]] = set()

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        todo = list(dict.fromkeys(text for text in texts if (query, text) not in self.scores))
        if todo:
            started = time.perf_counter()
            fresh = self.inner.score(query, todo)
            each = (time.perf_counter() - started) / len(todo)
            rows = [(query, text, float(value), each) for text, value in zip(todo, fresh, strict=True)]
            self.scores.update({(q, t): (v, c) for q, t, v, c in rows})
            with self.path.open("a") as handle:
                handle.writelines(json.dumps(row) + "\n" for row in rows)
        self.used.update((query, text) for text in texts)
        return np.array([self.scores[(query, text)][0] for text in texts], dtype=np.float32)

    @property
    def seconds(self) -> float:
        """Scoring time of every distinct (query, passage) asked for."""
        return sum(self.scores[pair][1] for pair in self.used)


def built_indexes(collection: str, root: Path, console: Console) -> dict[str, Path]:
    """BM25 and MiniLM flat indexes of `collection` under `root`, built once (the other
    benchmarks over the four original collections take theirs from here too)."""
    paths = {}
    for name, encoder in (("BM25", "bm25"), ("MiniLM", "minilm")):
        paths[name] = root / encoder
        if not (paths[name] / "manifest.json").is_file():
            console.print(f"indexing {collection} with {encoder}")
            build_index(collection, paths[name], encoder=encoder, show_progress=False)
    return paths


def runs_of(
    collection: str, work: Path, console: Console, rows: Sequence[str]
) -> tuple[dict, object, dict[str, float]]:
    """{system: run} over every judged query of `collection`, its dataset, and each reranker's
    scoring milliseconds per query (candidates shared with another first stage counted once)."""
    data = load_eval_dataset(collection)
    root = work / collection.replace("/", "-")
    indexes = {name: Index.load(path) for name, path in built_indexes(collection, root, console).items()}
    runs = {name: retrieve(index, data, DEPTH, False) for name, index in indexes.items()}
    runs[ANCHOR] = fuse([runs["BM25"], runs["MiniLM"]], "rrf", depth=DEPTH, top=DEPTH)
    memos: dict[str, Memo] = {}
    for name in rows:
        first, spec, depth = RERANKED[name]
        memo = memos.setdefault(spec, Memo(spec, root / f"scores-{spec}.jsonl"))
        console.print(f"{collection}: {name}")
        runs[name] = rerank_run(memo, data.queries, runs[first], indexes["BM25"], depth)
    ms = {spec: 1000 * memo.seconds / len(data.queries) for spec, memo in memos.items()}
    return runs, data, {name: ms[RERANKED[name][1]] for name in rows}


def first_stage(name: str, firsts: dict[str, str] | None = None) -> str:
    """The system a row reranked (itself for a first stage)."""
    return (firsts or {n: first for n, (first, _, _) in RERANKED.items()}).get(name, name)


def table_of(
    collection: str,
    scores: dict[str, dict[str, dict[str, float]]],
    ms: dict[str, float],
    firsts: dict[str, str] | None = None,
) -> Table:
    """Every system's metrics beside its first stage's and the anchor's (`firsts`: reranked row ->
    its first stage; default this script's rows)."""
    queries = list(scores["BM25"]["nDCG@10"])
    table = Table(title=f"{collection}: {len(queries)} judged queries")
    table.add_column("system")
    for metric in METRICS:
        table.add_column(f"{metric} ± SE", justify="right")
        table.add_column("/ first stage", justify="right")
    table.add_column("nDCG@10 / anchor", justify="right")
    table.add_column("Δ nDCG@10 vs first stage ± paired SE (p)", justify="right")
    table.add_column("rerank ms/query", justify="right")

    def values(name: str, metric: str) -> np.ndarray:
        return np.array([scores[name][metric][q] for q in queries])

    for name in scores:
        base = first_stage(name, firsts)
        cells = []
        for metric in METRICS:
            mean, se = mean_se(values(name, metric))
            reference = values(base, metric).mean()
            cells += [f"{mean:.4f} ± {se:.3f}", f"{mean / reference:.3f}x" if reference else "–"]
        anchor = values(name, "nDCG@10").mean() / values(ANCHOR, "nDCG@10").mean()
        delta = ""
        if name != base:
            d, d_se = mean_se(values(name, "nDCG@10") - values(base, "nDCG@10"))
            p = paired_p_value("fisher", values(base, "nDCG@10"), values(name, "nDCG@10"))
            delta = f"{d:+.4f} ± {d_se:.4f} (p {p:.3f})"
        table.add_row(name, *cells, f"{anchor:.3f}x", delta, f"{ms[name]:.0f}" if name in ms else "")
    return table


def summary(ratios: dict[str, dict], choose: list[str], confirm: list[str]) -> Table:
    table = Table(title="nDCG@10 / first stage (/ anchor), mean over each set of collections")
    table.add_column("system")
    for label in ("choice", "confirmation"):
        table.add_column(f"mean, {label}", justify="right")
    for name in next(iter(ratios.values())):
        cells = []
        for group in (choose, confirm):
            present = [c for c in group if c in ratios]
            first = np.mean([ratios[c][name][0] for c in present])
            anchor = np.mean([ratios[c][name][1] for c in present])
            cells.append(f"{first:.3f}x ({anchor:.3f}x)")
        table.add_row(name, *cells)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--choose", nargs="+", default=["cranfield", "glasgow/cisi"])
    parser.add_argument("--confirm", nargs="*", default=["glasgow/medline", "glasgow/lisa"])
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "benchmarks" / "rerank")
    parser.add_argument(
        "--rerankers", nargs="+", default=None, help="only the rows of these reranker specs (minilm, qlm)"
    )
    args = parser.parse_args()
    rows = [name for name, (_, spec, _) in RERANKED.items() if not args.rerankers or spec in args.rerankers]
    console = Console(width=220)
    ratios = {}
    for collection in [*args.choose, *args.confirm]:
        runs, data, ms = runs_of(collection, args.work, console, rows)
        scores = {name: per_query_scores(run, data, METRICS) for name, run in runs.items()}
        console.print(table_of(collection, scores, ms))
        ndcg = {name: np.mean(list(by_metric["nDCG@10"].values())) for name, by_metric in scores.items()}
        ratios[collection] = {
            name: (ndcg[name] / ndcg[first_stage(name)], ndcg[name] / ndcg[ANCHOR]) for name in rows
        }
    console.print(summary(ratios, args.choose, args.confirm))


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
