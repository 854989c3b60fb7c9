"""Question: how much retrieval quality does each compressed index keep per byte?

    python benchmarks/compression.py [--collections cranfield-beir cisi-beir] [--plot docs/compression.png]

For each BEIR folder in TESSERA_DATA_DIR: one MiniLM Flat index (the anchor), then every other
kind rebuilt from its vectors with `reindex` (no re-encoding); JPQ trained on the `train` split
from the OPQ index of the same size (once more with title -> body pairs added); all evaluated on
the `test` split (queries never trained on).
Latency is the backend alone (query vectors precomputed), one query at a time, k=10.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from tessera import config  # noqa: E402
from tessera.data.datasets import load_eval_dataset  # noqa: E402
from tessera.eval.evaluate import score  # noqa: E402
from tessera.eval.runs import retrieve  # noqa: E402
from tessera.indexing.builder import build_index  # noqa: E402
from tessera.indexing.reindex import reindex  # noqa: E402
from tessera.retrieval.index import Index  # noqa: E402
from tessera.training.jpq import train_jpq  # noqa: E402

METRICS = ["nDCG@10", "R@100"]
DIM = 384

# (label, factory, search parameters, bytes per vector)
KINDS = [
    ("PQ48", "PQ48", {}, 48),
    ("OPQ48+PQ48", "OPQ48,PQ48", {}, 48),
    ("IVF64+PQ48 (nprobe 16)", "IVF64,PQ48", {"nprobe": 16}, 48),
    ("OPQ24+PQ24", "OPQ24,PQ24", {}, 24),
    ("binary (sign)", "binary", {}, 48),
    *[(f"BEBR {u} bit SDC", f"bebr:{u}", {"mode": "sdc"}, 48 * u) for u in (1, 2, 4)],
    *[(f"BEBR {u} bit Hamming", f"bebr:{u}", {"mode": "hamming"}, 48 * u) for u in (1, 2, 4)],
    *[
        (f"BEBR {u} bit Hamming+rescore100", f"bebr:{u}", {"mode": "hamming", "rescore": 100}, 48 * u)
        for u in (1, 2, 4)
    ],
]
# (label, starting index, bytes per vector, also train on title -> body pairs)
JPQ = [
    ("JPQ48", "OPQ48+PQ48", 48, False),
    ("JPQ24", "OPQ24+PQ24", 24, False),
    ("JPQ48 + title pairs", "OPQ48+PQ48", 48, True),
]


def backend_ms(index: Index, queries: list[str]) -> float:
    vectors = index.encoder.encode_queries(queries)
    index.backend.search(vectors[:2], 10)
    start = time.perf_counter()
    for row in vectors:
        index.backend.search(row[None, :], 10)
    return 1000 * (time.perf_counter() - start) / len(vectors)


def measure(path: Path, dataset, params: dict | None = None) -> tuple[dict, float]:
    index = Index.load(path, search_params=params)
    metrics = score(retrieve(index, dataset, 1000, show_progress=False), dataset, METRICS)
    return metrics, backend_ms(index, list(dataset.queries.values()))


def bench(name: str, work: Path, console: Console) -> list[tuple[str, int, float]]:
    folder = config.data_dir() / name
    test = load_eval_dataset(folder, "test")
    flat = build_index(folder, work / "flat", encoder="minilm", show_progress=False)
    flat_metrics, flat_ms = measure(flat, test)
    rows = [("Flat fp32 (anchor)", DIM * 4, flat_metrics, flat_ms, None)]
    built: dict[str, Path] = {}
    for label, factory, params, size in KINDS:
        if factory not in built:
            start = time.perf_counter()
            built[factory] = reindex(
                flat, work / factory.replace(",", "_").replace(":", "_"), factory, params, show_progress=False
            )
            console.log(f"{name}: built {factory} in {time.perf_counter() - start:.1f} s")
        metrics, ms = measure(built[factory], test, params)
        rows.append((label, size, metrics, ms, None))
    for label, base, size, titles in JPQ:
        factory = next(f for lab, f, _, _ in KINDS if lab == base)
        start = time.perf_counter()
        trained = train_jpq(
            built[factory],
            folder,
            work / label,
            split="train",
            pairs="qrels,titles" if titles else "qrels",
            show_progress=False,
        )
        seconds = time.perf_counter() - start
        metrics, ms = measure(trained, test)
        rows.append((label, size, metrics, ms, seconds))
    table = Table(title=f"{name}: test split, {len(test.queries)} queries never trained on")
    for column in (
        "index",
        "bytes/vec",
        "compression",
        *METRICS,
        "nDCG@10 / flat",
        "R@100 / flat",
        "backend ms/q",
        "train s",
    ):
        table.add_column(column, justify="left" if column == "index" else "right")
    for label, size, metrics, ms, seconds in rows:
        table.add_row(
            label,
            str(size),
            f"{DIM * 4 / size:.0f}x",
            *(f"{metrics[m]:.4f}" for m in METRICS),
            f"{metrics['nDCG@10'] / flat_metrics['nDCG@10']:.3f}",
            f"{metrics['R@100'] / flat_metrics['R@100']:.3f}",
            f"{ms:.3f}",
            "-" if seconds is None else f"{seconds:.0f}",
        )
    console.print(table)
    base = flat_metrics["nDCG@10"]
    return [(label, size, metrics["nDCG@10"] / base) for label, size, metrics, _, _ in rows]


def plot(results: dict[str, list[tuple[str, int, float]]], path: Path) -> None:
    figure, axes = plt.subplots(1, len(results), figsize=(7 * len(results), 5), squeeze=False)
    for axis, (name, rows) in zip(axes[0], results.items(), strict=True):
        for family, marker in (
            ("Flat", "s"),
            ("PQ", "o"),
            ("IVF", "v"),
            ("JPQ", "*"),
            ("binary", "x"),
            ("BEBR", "D"),
        ):
            points = [
                (size, ratio, label)
                for label, size, ratio in rows
                if label.startswith(family) or (family == "PQ" and label.startswith("OPQ"))
            ]
            if points:
                sizes, ratios = [p[0] for p in points], [p[1] for p in points]
                axis.scatter(sizes, ratios, marker=marker, label=family, s=60)
                for size, ratio, label in points:
                    axis.annotate(
                        label.replace(" (anchor)", ""),
                        (size, ratio),
                        fontsize=7,
                        xytext=(4, 2),
                        textcoords="offset points",
                    )
        axis.set_xscale("log")
        axis.set_xlabel("bytes per vector (log)")
        axis.set_ylabel("nDCG@10 / flat")
        axis.axhline(1.0, color="grey", linewidth=0.8)
        axis.set_title(f"{name} (test split)")
        axis.legend(loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--collections", nargs="+", default=["cranfield-beir", "cisi-beir"])
    parser.add_argument("--plot", type=Path, default=Path("docs/compression.png"))
    args = parser.parse_args()
    console = Console(width=170)
    results = {}
    for name in args.collections:
        with tempfile.TemporaryDirectory() as work:
            results[name] = bench(name, Path(work), console)
    plot(results, args.plot)
    console.print(f"plot written to {args.plot}")


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
