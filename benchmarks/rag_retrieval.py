"""Question: does hybrid retrieval put more of the judged-relevant documents into a RAG prompt
than dense retrieval alone, before and after the context is compressed?

    python benchmarks/rag_retrieval.py [--collections cranfield-beir cisi-beir medline-beir glasgow/lisa] \
        [--queries 1000] [--compress crag] [--plot docs/rag_retrieval.png] [--work DIR]

Per collection, on every judged `test` query (up to `--queries`): `tessera eval-rag` (k=10,
`--compress`, default CRAG) with three retrievers: MiniLM flat alone (`tessera rag`'s default
on a MiniLM index), BM25 alone, and RRF(MiniLM, BM25) (`tessera rag INDEX Q --fuse BM25_INDEX`).
Per query: `recall`, the judged-relevant documents in the top k over all judged relevant; `kept
recall`, those the compressed context still keeps (term retention, tessera/rag/retention.py); the
same for plain RAG truncated to the compressed context's tokens. Every number has its standard
error over queries; each retriever's difference from MiniLM alone is paired over queries.
A collection is a BEIR folder in TESSERA_DATA_DIR or an ir_datasets id (written once as a BEIR
folder with hash-split test queries, as benchmarks/generalization.py does). Indexes and each
(collection, retriever) result are saved under `--work`, so a rerun resumes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tessera import config  # noqa: E402
from tessera.cli import at_least
from tessera.eval.significance import mean_se  # noqa: E402
from tessera.indexing.builder import build_index  # noqa: E402
from tessera.rag.evaluate import evaluate_rag  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generalization import collection_folder  # noqa: E402

# label -> (first index, indexes fused with it)
RETRIEVERS = {
    "MiniLM": ("minilm", ()),
    "BM25": ("bm25", ()),
    "RRF(MiniLM, BM25)": ("minilm", ("bm25",)),
}
BASELINE = "MiniLM"
MEASURES = {  # column -> per-query value from an eval-rag row
    "recall": lambda r: r["relevant_in_top_k"] / r["relevant_judged"],
    "kept recall": lambda r: r["kept"] / r["relevant_judged"],
    "truncation kept": lambda r: r["truncation_kept"] / r["relevant_judged"],
}


def index_of(folder: Path, encoder: str, work: Path) -> Path:
    target = work / "indexes" / f"{folder.name}-{encoder}"
    if not (target / "manifest.json").is_file():
        build_index(str(folder), target, encoder=encoder)
    return target


def measure(collection: str, label: str, args: argparse.Namespace) -> dict:
    """eval-rag's summary and per-query rows, saved once."""
    saved = args.work / "results" / collection.replace("/", "-") / f"{label}-{args.compress}.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    folder = collection_folder(collection, args.work)
    first, others = RETRIEVERS[label]
    return evaluate_rag(
        index_of(folder, first, args.work),
        str(folder),
        compress=args.compress,
        max_queries=args.queries,
        fuse=[index_of(folder, other, args.work) for other in others],
        json_path=saved,
    )


def per_query(result: dict, column: str) -> dict[str, float]:
    """Queries with at least one judged-relevant document (the others have no recall)."""
    value = MEASURES[column]
    return {r["query_id"]: value(r) for r in result["queries"] if r["relevant_judged"]}


def table(collection: str, results: dict[str, dict]) -> Table:
    base = {column: per_query(results[BASELINE], column) for column in MEASURES}
    judged = len(base["recall"])
    out = Table(title=f"{collection}: {judged} test queries with a judged-relevant document, k=10")
    out.add_column("retriever")
    out.add_column("token ratio", justify="right")
    for column in MEASURES:
        out.add_column(f"{column} ± se", justify="right")
        out.add_column(f"/ {BASELINE}", justify="right")
        out.add_column("Δ ± paired se", justify="right")
    for label, result in results.items():
        cells = [label, f"{result['token_ratio']:.3f}"]
        for column in MEASURES:
            scores = per_query(result, column)
            mean, se = mean_se(list(scores.values()))
            base_mean = float(np.mean(list(base[column].values())))
            diff, diff_se = mean_se([scores[q] - base[column][q] for q in base[column]])
            cells += [f"{mean:.3f} ± {se:.3f}", f"{mean / base_mean:.3f}x", f"{diff:+.3f} ± {diff_se:.3f}"]
        out.add_row(*cells)
    return out


def pooled(every: dict[str, dict[str, dict]]) -> Table:
    """Each retriever's paired difference from MiniLM, averaged over collections (each collection
    weighs the same; the standard error combines theirs: sqrt(sum se^2) / n)."""
    out = Table(title=f"mean over {len(every)} collections: Δ against {BASELINE} ± se")
    out.add_column("retriever")
    for column in MEASURES:
        out.add_column(column, justify="right")
    for label in RETRIEVERS:
        cells = [label]
        for column in MEASURES:
            stats = []
            for results in every.values():
                base, scores = per_query(results[BASELINE], column), per_query(results[label], column)
                stats.append(mean_se([scores[q] - base[q] for q in base]))
            mean = float(np.mean([m for m, _ in stats]))
            se = float(np.sqrt(sum(e**2 for _, e in stats))) / len(stats)
            cells.append(f"{mean:+.3f} ± {se:.3f}")
        out.add_row(*cells)
    return out


def plot(every: dict[str, dict[str, dict]], path: Path) -> None:
    """Kept recall after compression per collection and retriever, with standard errors."""
    collections = list(every)
    width = 0.8 / len(RETRIEVERS)
    fig, ax = plt.subplots(figsize=(1.8 + 1.9 * len(collections), 3.6))
    for n, label in enumerate(RETRIEVERS):
        stats = [mean_se(list(per_query(every[c][label], "kept recall").values())) for c in collections]
        ax.bar(
            np.arange(len(collections)) + (n - 1) * width,
            [m for m, _ in stats],
            width,
            yerr=[s for _, s in stats],
            capsize=3,
            label=label,
        )
    ax.set_xticks(np.arange(len(collections)), collections)
    ax.set_ylabel("judged-relevant docs kept in the\ncompressed prompt / all judged")
    ax.set_title("RAG context after CRAG: which retriever feeds it (k=10, ± SE over queries)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--collections", nargs="*", default=["cranfield-beir", "cisi-beir", "medline-beir", "glasgow/lisa"]
    )
    parser.add_argument(
        "--queries", type=at_least(1), default=1000, help="At most this many test queries each."
    )
    parser.add_argument("--compress", default="crag")
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "benchmarks" / "rag-retrieval")
    args = parser.parse_args()
    console = Console(width=200)
    every = {}
    for collection in args.collections:
        every[collection] = {label: measure(collection, label, args) for label in RETRIEVERS}
        console.print(table(collection, every[collection]))
    if len(every) > 1:
        console.print(pooled(every))
    if args.plot:
        plot(every, args.plot)
        console.print(f"plot: {args.plot}")


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
