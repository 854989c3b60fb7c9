"""Question: does Tessera's BM25 / MiniLM / hybrid retrieval match the libraries used directly,
and what does it cost? One table per collection, the direct-library anchor beside Tessera.

    python benchmarks/retrieval_baselines.py [--collections cranfield glasgow/cisi glasgow/medline]

Anchors: pyserini (Anserini IndexCollection with a title field + LuceneSearcher, k1=0.9 b=0.4,
fields contents=1 and title=0.25, Tessera's default title weight) and
sentence-transformers + numpy exact inner product, on the same ir_datasets documents.
Metrics: ir_measures on every judged query, depth 1000.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from tessera.data.datasets import load_eval_dataset
from tessera.data.irds import load
from tessera.eval.evaluate import score
from tessera.eval.runs import retrieve
from tessera.indexing.builder import build_index
from tessera.indexing.jvm import pyserini
from tessera.models.bm25 import TITLE_WEIGHT
from tessera.models.registry import load_encoder
from tessera.retrieval.fusion import reciprocal_rank_fusion
from tessera.retrieval.hits import Hit
from tessera.retrieval.index import Index

METRICS = ["nDCG@10", "R@100", "RR@10"]
DEPTH = 1000
LATENCY_QUERIES = 100


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def per_query_ms(search, queries: list[str]) -> float:
    sample = queries[:LATENCY_QUERIES]
    _, seconds = timed(lambda: [search(q) for q in sample])
    return 1000 * seconds / len(sample)


def anchor_bm25(collection: str, work: Path, dataset) -> tuple[dict, float, float]:
    pyserini()
    from jnius import autoclass
    from pyserini.search.lucene import LuceneSearcher

    def build() -> None:
        docs = work / "anchor-docs"
        docs.mkdir()
        with (docs / "docs.jsonl").open("w") as handle:
            for doc in load(collection).docs_iter():
                title = getattr(doc, "title", "") or ""
                handle.write(
                    json.dumps({"id": doc.doc_id, "contents": doc.default_text(), "title": title}) + "\n"
                )
        autoclass("io.anserini.index.IndexCollection").main(
            [
                "-collection",
                "JsonCollection",
                "-input",
                str(docs),
                "-index",
                str(work / "anchor-lucene"),
                "-generator",
                "DefaultLuceneDocumentGenerator",
                "-threads",
                "1",
                "-fields",
                "title",
            ]
        )

    _, build_s = timed(build)
    searcher = LuceneSearcher(str(work / "anchor-lucene"))
    searcher.set_bm25(0.9, 0.4)
    fields = {"contents": 1.0, "title": TITLE_WEIGHT}  # Tessera's default title weight
    qids = list(dataset.queries)
    hits = searcher.batch_search([dataset.queries[q] for q in qids], qids, k=DEPTH, threads=1, fields=fields)
    run = {q: [Hit(h.docid, h.score, r) for r, h in enumerate(hits[q], 1)] for q in qids}
    latency = per_query_ms(lambda q: searcher.search(q, k=10, fields=fields), list(dataset.queries.values()))
    return run, build_s, latency


def anchor_dense(collection: str, dataset) -> tuple[dict, float, float]:
    from sentence_transformers import SentenceTransformer

    from tessera.models.bundled import bundled_path

    model = SentenceTransformer(str(bundled_path("minilm")))
    docs = list(load(collection).docs_iter())
    ids = [d.doc_id for d in docs]
    vectors, build_s = timed(
        lambda: model.encode(
            [d.default_text() for d in docs], batch_size=64, normalize_embeddings=True, convert_to_numpy=True
        )
    )
    qids = list(dataset.queries)
    queries = model.encode([dataset.queries[q] for q in qids], normalize_embeddings=True)
    scores = queries @ vectors.T
    run = {}
    for qid, row in zip(qids, scores, strict=True):
        order = np.argsort(-row, kind="stable")[:DEPTH]
        run[qid] = [Hit(ids[i], float(row[i]), r) for r, i in enumerate(order, 1)]

    def one(q: str) -> None:
        row = model.encode([q], normalize_embeddings=True) @ vectors.T
        np.argpartition(-row[0], 10)[:10]

    return run, build_s, per_query_ms(one, list(dataset.queries.values()))


def bench(collection: str, work: Path, console: Console) -> None:
    dataset = load_eval_dataset(collection)
    load_encoder("minilm")  # load once, outside every timing
    rows: list[tuple[str, dict, float | None, float | None]] = []
    tessera_runs = {}
    for name, encoder in (("bm25", "bm25"), ("minilm", "minilm")):
        path, build_s = timed(
            lambda e=encoder, n=name: build_index(collection, work / n, encoder=e, show_progress=False)
        )
        index = Index.load(path)
        tessera_runs[name] = retrieve(index, dataset, DEPTH, show_progress=False)
        latency = per_query_ms(lambda q, i=index: i.search(q, k=10), list(dataset.queries.values()))
        rows.append((f"Tessera {name}", tessera_runs[name], build_s, latency))
    fused = reciprocal_rank_fusion(list(tessera_runs.values()), k=60, depth=DEPTH, top=DEPTH)
    rows.append(("Tessera hybrid (RRF)", fused, None, None))
    bm25_run, bm25_build, bm25_latency = anchor_bm25(collection, work, dataset)
    dense_run, dense_build, dense_latency = anchor_dense(collection, dataset)
    anchors = {
        "Tessera bm25": ("pyserini direct", bm25_run, bm25_build, bm25_latency),
        "Tessera minilm": ("sentence-transformers + numpy", dense_run, dense_build, dense_latency),
        "Tessera hybrid (RRF)": (
            "pyserini RRF of the two anchors",
            reciprocal_rank_fusion([bm25_run, dense_run], k=60, depth=DEPTH, top=DEPTH),
            None,
            None,
        ),
    }
    table = Table(title=f"{collection}: {len(dataset.queries)} judged queries, depth {DEPTH}")
    columns = ["system", *METRICS, "nDCG@10 ratio", "build s", "build ratio", "ms/query", "latency ratio"]
    for column in columns:
        table.add_column(column, justify="left" if column == "system" else "right")

    def fmt(value: float | None, pattern: str = "{:.1f}") -> str:
        return "-" if value is None else pattern.format(value)

    for name, run, build_s, latency in rows:
        anchor_name, anchor_run, anchor_build, anchor_latency = anchors[name]
        ours, theirs = score(run, dataset, METRICS), score(anchor_run, dataset, METRICS)
        table.add_row(
            f"  {anchor_name}",
            *(f"{theirs[m]:.4f}" for m in METRICS),
            "1.000",
            fmt(anchor_build),
            "1.00",
            fmt(anchor_latency),
            "1.00",
        )
        ratio = lambda a, b: None if a is None or b is None else a / b  # noqa: E731
        table.add_row(
            name,
            *(f"{ours[m]:.4f}" for m in METRICS),
            f"{ours['nDCG@10'] / theirs['nDCG@10']:.3f}",
            fmt(build_s),
            fmt(ratio(build_s, anchor_build), "{:.2f}"),
            fmt(latency),
            fmt(ratio(latency, anchor_latency), "{:.2f}"),
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--collections", nargs="+", default=["cranfield", "glasgow/cisi", "glasgow/medline"])
    args = parser.parse_args()
    console = Console(width=160)
    for collection in args.collections:
        with tempfile.TemporaryDirectory() as work:
            bench(collection, Path(work), console)


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
