"""What Tessera's faiss training settings cost and save against faiss' own defaults.

Question: index_factory turns on polysemous training for every PQ (under an HNSW graph too),
and faiss' k-means prints a warning per clustering on a small sample. Tessera turns polysemous
training off everywhere and prints one warning instead (`tessera/indexing/faiss_training.py`).
Per factory, on a collection's MiniLM document vectors: training time, the lines faiss writes
to stderr, and recall@10 of every judged query's MiniLM vector against exact search, faiss'
defaults beside Tessera's, each trained `--repeats` times (median seconds).

    TESSERA_DATA_DIR=../shared/data python benchmarks/faiss_training.py --collections medline-beir cisi-beir
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np
from rich.console import Console
from rich.table import Table

from tessera import config
from tessera.cli import at_least
from tessera.data.datasets import load_eval_dataset
from tessera.indexing.builder import build_index
from tessera.indexing.faiss_backend import FaissBackend, create_index, train_index
from tessera.models.registry import load_encoder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generalization import collection_folder  # noqa: E402

FACTORIES = ["PQ48", "OPQ48,PQ48", "IVF64,PQ48", "HNSW32_PQ48"]


@contextmanager
def stderr_lines(counter: list[int]):
    """Count the lines written to the C stderr inside (faiss writes there, not to sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            counter.append(sink.read().count(b"\n"))


def trained(vectors: np.ndarray, factory: str, tessera: bool) -> tuple[faiss.Index, float, int]:
    """The index trained and filled, the training seconds and the stderr lines of training."""
    lines: list[int] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if tessera:
            index = create_index(vectors.shape[1], factory)
        else:
            index = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
        start = time.perf_counter()
        with stderr_lines(lines):
            if tessera:
                train_index(index, vectors, factory)
            else:
                index.train(vectors)
        seconds = time.perf_counter() - start
    index.add(vectors)
    return index, seconds, lines[0]


def recall_at_10(index: faiss.Index, queries: np.ndarray, exact: np.ndarray) -> float:
    found = index.search(queries, 10)[1]
    return float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--collections", nargs="*", default=["medline-beir", "cisi-beir"])
    parser.add_argument("--factories", nargs="*", default=FACTORIES)
    parser.add_argument("--repeats", type=at_least(1), default=3)
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "benchmarks" / "faiss_training")
    args = parser.parse_args()
    config.apply_offline_defaults()
    console = Console(width=160)
    encoder = load_encoder("minilm")
    table = Table(title=f"faiss' training defaults against Tessera's (median of {args.repeats} trainings)")
    for column in (
        "collection",
        "factory",
        "train s: faiss",
        "Tessera",
        "faiss / Tessera",
        "stderr lines: faiss",
        "Tessera",
        "recall@10: faiss",
        "Tessera",
    ):
        table.add_column(column, justify="left" if column in ("collection", "factory") else "right")
    for name in args.collections:
        folder = collection_folder(name, args.work)
        path = args.work / name.replace("/", "-") / "flat"
        if not path.is_dir():
            build_index(folder, path, encoder="minilm", show_progress=False)
        vectors = np.ascontiguousarray(FaissBackend.load(path).exact_vectors(), dtype=np.float32)
        queries = np.ascontiguousarray(
            encoder.encode_queries(list(load_eval_dataset(folder, "all").queries.values())), dtype=np.float32
        )
        exact = faiss.IndexFlatIP(vectors.shape[1])
        exact.add(vectors)
        truth = exact.search(queries, 10)[1]
        for factory in args.factories:
            row: dict[bool, tuple[float, int, float]] = {}
            for tessera in (False, True):
                runs = [trained(vectors, factory, tessera) for _ in range(args.repeats)]
                seconds = statistics.median(r[1] for r in runs)
                row[tessera] = (seconds, runs[0][2], recall_at_10(runs[0][0], queries, truth))
            (fs, fl, fr), (ts, tl, tr) = row[False], row[True]
            table.add_row(
                name,
                factory,
                f"{fs:.2f}",
                f"{ts:.2f}",
                f"{fs / ts:.1f}x",
                str(fl),
                str(tl),
                f"{fr:.3f}",
                f"{tr:.3f}",
            )
        console.print(table)


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
