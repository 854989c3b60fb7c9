"""Question: do the nprobe/efSearch defaults measured at build time (indexing/tuning.py) keep
an approximate index near exact search on real queries, where faiss' own defaults do not?

    python benchmarks/tuned_defaults.py --flat cranfield=DIR cisi=DIR ... \
        [--factories "IVF64,PQ48" "IVF64,Flat" HNSW32 "IVF64,PQ48,RFlat"] [--split test]

Each `NAME=DIR` is a MiniLM Flat index of a collection whose BEIR folder is
`$TESSERA_DATA_DIR/NAME-beir` (or give `NAME=DIR=DATASET`). Every factory is built from the Flat
index's vectors by `reindex` (which tunes), then scored on the split's queries at faiss' default
(nprobe 1 / efSearch 16) and at the tuned default: nDCG@10 beside Flat's, and recall@10 of the
real queries against exact search.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flat", nargs="+", required=True, help="NAME=DIR[=DATASET]")
    parser.add_argument("--factories", nargs="+", default=["IVF64,PQ48", "IVF64,Flat", "HNSW32"])
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    table = Table(title="nDCG@10 (recall@10 of the real queries vs exact search)")
    for column in ["collection", "index", "flat", "faiss default", "tuned", "tuned value", "tune s"]:
        table.add_column(column)
    with tempfile.TemporaryDirectory() as tmp:
        for item in args.flat:
            name, flat, *rest = item.split("=")
            dataset = load_eval_dataset(rest[0] if rest else config.data_dir() / f"{name}-beir", args.split)
            flat_ndcg = evaluate([flat], dataset, metrics=["nDCG@10"], show_progress=False).metrics["nDCG@10"]
            exact = Index.load(flat)
            queries = exact.encoder.encode_queries(list(dataset.queries.values()))
            _, truth = exact.backend.search(queries, 10)
            for factory in args.factories:
                started = time.perf_counter()
                path = reindex(flat, Path(tmp) / f"{name}-{len(table.rows)}", factory, show_progress=False)
                seconds = time.perf_counter() - started
                tuning = Manifest.read(path).tuning
                param = tuning.get("param")
                cells = []
                for params in ({param: FAISS_DEFAULTS[param]} if param else {}, {}):
                    ndcg = evaluate(
                        [path], dataset, metrics=["nDCG@10"], show_progress=False, search_params=params
                    ).metrics["nDCG@10"]
                    cells.append(f"{ndcg:.3f} ({recall_at_10(path, params, queries, truth):.3f})")
                stored = Manifest.read(path).search_params  # a refine index also tunes k_factor_rf
                value = ", ".join(f"{k}={v}" for k, v in stored.items() if k in (param, "k_factor_rf")) or "-"
                table.add_row(name, factory, f"{flat_ndcg:.3f}", *cells, value, f"{seconds:.1f}")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
