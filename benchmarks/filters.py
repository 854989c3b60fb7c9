"""Question: what does a metadata filter cost, per index kind and per share of the collection it
keeps, and how much of the exact filtered top 10 does each search plan find?

    python benchmarks/filters.py [--repeats 3] [--json out.json]

Cranfield as ir_datasets reads the original file, so every document keeps its `author` and `bib`
(bibliography) fields; indexes built under TESSERA_CACHE_DIR/benchmarks/filters: BM25, MiniLM
Flat, and HNSW32 and IVF64,Flat re-indexed from Flat's vectors (their search defaults tuned at
build, as `tessera reindex` does). Filters from those fields, from broad to one author's papers.
All 225 queries, k=10, one `batch_search` per run, median of `--repeats`; the baseline is the
same call without a filter. Plans: `auto`, what `Index.batch_search(filter=)` picks (a filter
keeping at most 20,000 documents: BM25 with a filter clause in Lucene's query, a faiss index of
one vector per document scoring their stored vectors one by one; broader ones through faiss'
IDSelector, or for BM25 ranked deeper, x4 a round); `selector`, faiss' IDSelector forced (every
filter counted as broad); `deep`, ranking deeper forced for every kind.
`recall@10` is the share of the exact filtered top 10 found (exact: Flat's ranking restricted for
MiniLM kinds, BM25's full ranking restricted for BM25), averaged over queries; the `none` row of
each index gives its unfiltered recall against Flat, the ANN error every filtered row inherits.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.table import Table

import tessera.retrieval.index as index_module
from tessera import config
from tessera.cli import at_least
from tessera.data.datasets import load_queries
from tessera.durable import write_text_atomic
from tessera.indexing.builder import build_index
from tessera.indexing.faiss_backend import FaissBackend
from tessera.indexing.reindex import reindex
from tessera.retrieval.index import Index

FILTERS = {
    "has author": {"author": {"$exists": True}},
    "NACA reports": {"bib": {"$gte": "naca", "$lt": "nacb"}},
    "J. Aero. Sci.": {"bib": {"$gte": "j. ae", "$lt": "j. af"}},
    "one author": {"author": "kuhn,r.e."},
}
K = 10


def build(root: Path) -> dict[str, Path]:
    paths = {name: root / name for name in ("bm25", "flat", "hnsw", "ivf")}
    if not paths["bm25"].exists():
        build_index("cranfield", paths["bm25"], encoder="bm25", show_progress=True)
    if not paths["flat"].exists():
        build_index("cranfield", paths["flat"], encoder="minilm", show_progress=True)
    for name, factory in (("hnsw", "HNSW32"), ("ivf", "IVF64,Flat")):
        if not paths[name].exists():
            reindex(paths["flat"], paths[name], factory)
    return paths


@contextlib.contextmanager
def plan(name: str) -> Iterator[None]:
    """`auto` as shipped; `selector` and `deep` by moving the threshold and the faiss method."""
    kept = index_module.SELECTIVE_MAX, FaissBackend.search_within
    if name != "auto":
        index_module.SELECTIVE_MAX = 0
    if name == "deep":
        FaissBackend.search_within = lambda *args: None
    try:
        yield
    finally:
        index_module.SELECTIVE_MAX, FaissBackend.search_within = kept


def timed(index: Index, queries: list[str], where: dict | None, repeats: int) -> tuple[float, list]:
    """Median seconds of one batch_search over all queries, and its hits."""
    times, hits = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        hits = index.batch_search(queries, K, filter=where)
        times.append(time.perf_counter() - started)
    return statistics.median(times), hits


def restricted_ranking(index: Index, queries: list[str], where: dict) -> list:
    """The exact filtered top 10: the index's full ranking with the other documents removed."""
    allowed = index.docstore.matching(where)
    rows = index.batch_search(queries, len(index))
    return [[hit for hit in row if hit.doc_id in allowed][:K] for row in rows]


def recall(found: list, exact: list) -> float:
    shares = [
        len({h.doc_id for h in got} & {h.doc_id for h in want}) / len(want)
        for got, want in zip(found, exact, strict=True)
        if want
    ]
    return statistics.fmean(shares) if shares else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=at_least(1), default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    paths = build(config.cache_dir() / "benchmarks" / "filters")
    queries = list(load_queries("cranfield", "test").values())
    indexes = {name: Index.load(path) for name, path in paths.items()}
    for index in indexes.values():  # warm: encoder, JVM, pages
        index.batch_search(queries[:8], K)
    exact = {f: indexes["flat"].batch_search(queries, K, filter=w) for f, w in FILTERS.items()}
    exact["none"] = indexes["flat"].batch_search(queries, K)
    exact_bm25 = {f: restricted_ranking(indexes["bm25"], queries, w) for f, w in FILTERS.items()}
    rows = []
    for name, index in indexes.items():
        base, plain = timed(index, queries, None, args.repeats)
        ann = 1.0 if name == "bm25" else recall(plain, exact["none"])  # the index's own, unfiltered
        rows.append(
            {
                "index": name,
                "filter": "none",
                "share": 1.0,
                "plan": "-",
                "ms_per_query": 1000 * base / len(queries),
                "x_unfiltered": 1.0,
                "recall@10": ann,
                "unfiltered_ms_per_query": 1000 * base / len(queries),
            }
        )
        for label, where in FILTERS.items():
            share = len(index.docstore.matching(where)) / len(index)
            for chosen in ("auto", "deep") if name == "bm25" else ("auto", "selector", "deep"):
                with plan(chosen):
                    seconds, hits = timed(index, queries, where, args.repeats)
                truth = exact_bm25[label] if name == "bm25" else exact[label]
                rows.append(
                    {
                        "index": name,
                        "filter": label,
                        "share": share,
                        "plan": chosen,
                        "ms_per_query": 1000 * seconds / len(queries),
                        "x_unfiltered": seconds / base,
                        "recall@10": recall(hits, truth),
                        "unfiltered_ms_per_query": 1000 * base / len(queries),
                    }
                )
    title = f"Filtered search on Cranfield ({len(queries)} queries, k={K}, median of {args.repeats})"
    table = Table(title=title)
    for column in ("index", "filter", "share", "plan", "ms/query", "x unfiltered", "recall@10"):
        table.add_column(column, justify="left" if column in ("index", "filter", "plan") else "right")
    for r in rows:
        table.add_row(
            r["index"],
            r["filter"],
            f"{r['share']:.1%}",
            r["plan"],
            f"{r['ms_per_query']:.2f}",
            f"{r['x_unfiltered']:.2f}x",
            f"{r['recall@10']:.3f}",
        )
    Console(width=140).print(table)
    if args.json:
        write_text_atomic(args.json, json.dumps(rows, indent=2))


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
