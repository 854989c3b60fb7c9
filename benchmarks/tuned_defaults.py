"""Question: do the nprobe/efSearch defaults measured at build time (indexing/tuning.py) keep
an approximate index near exact search on real queries, where faiss' own defaults do not?

    python benchmarks/tuned_defaults.py --flat cranfield=DIR cisi=DIR ... \
        [--factories "IVF64,PQ48" "IVF64,Flat" HNSW32 "IVF64,PQ48,RFlat"] [--split test] \
        [--tune-split train]

Each `NAME=DIR` is a MiniLM Flat index of a collection whose BEIR folder is
`$TESSERA_DATA_DIR/NAME-beir` (or give `NAME=DIR=DATASET`). Every factory is built from the Flat
index's vectors by `reindex` (which tunes), then scored on the split's queries at faiss' default
(nprobe 1 / efSearch 16) and at the tuned default: nDCG@10 beside Flat's, and recall@10 of the
real queries against exact search. With `--tune-split train`, each factory is also built with
`reindex(..., tune_queries=)` on that split's queries (`--tune-queries`: tuned on real queries
of the collection that are never scored) and scored the same way.
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

from tessera import config
from tessera.data.datasets import load_eval_dataset
from tessera.eval.evaluate import evaluate
from tessera.indexing.manifest import Manifest
from tessera.indexing.reindex import reindex
from tessera.retrieval.index import Index

FAISS_DEFAULTS = {"nprobe": 1, "efSearch": 16}


def recall_at_10(path: Path, params: dict, queries: np.ndarray, truth: np.ndarray) -> float:
    _, labels = Index.load(path, search_params=params).backend.search(queries, 10)
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(labels, truth, strict=True)]))


def scored(path: Path, params: dict, dataset, queries: np.ndarray, truth: np.ndarray) -> str:
    """nDCG@10 of the split's queries (recall@10 against exact search in brackets)."""
    found = evaluate([path], dataset, metrics=["nDCG@10"], show_progress=False, search_params=params)
    return f"{found.metrics['nDCG@10']:.3f} ({recall_at_10(path, params, queries, truth):.3f})"


def stored(path: Path, param: str | None) -> str:
    """The stored default of the tuned parameter (and a refine index's k_factor_rf)."""
    params = Manifest.read(path).search_params.items()
    return ", ".join(f"{k}={v}" for k, v in params if k in (param, "k_factor_rf")) or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flat", nargs="+", required=True, help="NAME=DIR[=DATASET]")
    parser.add_argument("--factories", nargs="+", default=["IVF64,PQ48", "IVF64,Flat", "HNSW32"])
    parser.add_argument("--split", default="test")
    parser.add_argument("--tune-split", default=None, help="Also tune on this split's queries.")
    args = parser.parse_args()
    table = Table(title="nDCG@10 (recall@10 of the real queries vs exact search)")
    columns = ["collection", "index", "flat", "faiss default", "tuned", "tuned value", "tune s"]
    if args.tune_split:
        columns += [f"tuned on {args.tune_split} queries", "its value"]
    for column in columns:
        table.add_column(column)
    with tempfile.TemporaryDirectory() as tmp:
        for item in args.flat:
            name, flat, *rest = item.split("=")
            source = rest[0] if rest else config.data_dir() / f"{name}-beir"
            dataset = load_eval_dataset(source, args.split)
            tune_file = None
            if args.tune_split:
                tuning_set = load_eval_dataset(source, args.tune_split)
                if set(tuning_set.queries) & set(dataset.queries):
                    raise SystemExit(f"{name}: the {args.tune_split} split shares queries with {args.split}")
                tune_file = Path(tmp) / f"{name}-{args.tune_split}-queries.jsonl"
                tune_file.write_text(
                    "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in tuning_set.queries.items())
                )
            flat_ndcg = evaluate([flat], dataset, metrics=["nDCG@10"], show_progress=False).metrics["nDCG@10"]
            exact = Index.load(flat)
            queries = exact.encoder.encode_queries(list(dataset.queries.values()))
            _, truth = exact.backend.search(queries, 10)
            for factory in args.factories:
                started = time.perf_counter()
                path = reindex(flat, Path(tmp) / f"{name}-{len(table.rows)}", factory, show_progress=False)
                seconds = time.perf_counter() - started
                param = Manifest.read(path).tuning.get("param")
                default = {param: FAISS_DEFAULTS[param]} if param else {}
                split = (dataset, queries, truth)
                cells = [scored(path, default, *split), scored(path, {}, *split)]
                cells += [stored(path, param), f"{seconds:.1f}"]
                if tune_file is not None:
                    out = Path(tmp) / f"{name}-q{len(table.rows)}"
                    path = reindex(flat, out, factory, show_progress=False, tune_queries=tune_file)
                    cells += [scored(path, {}, *split), stored(path, param)]
                table.add_row(name, factory, f"{flat_ndcg:.3f}", *cells)
    Console(width=160).print(table)


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
