"""BEBR search: binarize the query too (SDC), or score the float query against the codes (ADC)?

Question: `bebr:BITS` indexes scored a query by Symmetric Distance Calculation (the BEBR
paper's): the query is binarized and decoded like a document, and the inner product of the two
reconstructions is a sum of table look-ups. The same look-up tables take the query unbinarized
(`mode=adc`: the query's code-space reconstruction with no bits lost, `RecurrentBinarizer.
query_space`), at the same cost. Does that keep more of MiniLM flat's nDCG@10, on collections
the choice is made on (`--choose`) and confirmed on (`--confirm`)?

The binarizer sees document embeddings only, so every judged query of a collection scores it
(all splits). Per collection and bits: nDCG@10 of flat, SDC, ADC and Hamming (the codes'
plain sign agreement), ratios to flat, ADC - SDC per query with its paired standard error, and
milliseconds per query of each mode (one thread, query vectors given, median of 5 rounds).
Each setting is fitted from `--seeds` ITQ starts (what `bebr:BITS` indexes fit is seed 0): the
scores are seed means per query, "±" after a ratio the seed spread (SD) of the mean nDCG@10.

    TESSERA_DATA_DIR=../shared/data python benchmarks/bebr_scoring.py \\
        --choose cranfield-beir cisi-beir --confirm medline-beir glasgow/lisa
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import faiss
import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from tessera import config
from tessera.cli import at_least
from tessera.data.datasets import load_eval_dataset
from tessera.eval.runs import retrieve
from tessera.eval.significance import mean_se
from tessera.indexing.binary_backend import BebrBackend
from tessera.indexing.builder import build_index
from tessera.indexing.faiss_backend import FaissBackend
from tessera.models.bebr_start import fit_start
from tessera.retrieval.index import Index

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generalization import collection_folder, per_query  # noqa: E402

MODES = ("sdc", "adc", "hamming")


def milliseconds(backend: BebrBackend, vectors: np.ndarray, rounds: int = 5) -> float:
    """Median milliseconds per query of the backend's search, query vectors given, one thread."""
    threads, torch_threads = faiss.omp_get_max_threads(), torch.get_num_threads()
    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)  # SDC binarizes the query with the binarizer's MLP
    try:
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            backend.search(vectors, 10)
            times.append((time.perf_counter() - start) / len(vectors) * 1000)
        return statistics.median(times)
    finally:
        faiss.omp_set_num_threads(threads)
        torch.set_num_threads(torch_threads)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--choose", nargs="*", default=["cranfield-beir", "cisi-beir"])
    parser.add_argument("--confirm", nargs="*", default=["medline-beir", "glasgow/lisa"])
    parser.add_argument("--bits", nargs="*", type=int, default=[1, 2, 4])
    parser.add_argument(
        "--seeds", type=at_least(1), default=3, help="Binarizer starts per setting (ITQ seeds)."
    )
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "benchmarks" / "cross_validation")
    args = parser.parse_args()
    config.apply_offline_defaults()
    console = Console(width=160)
    table = Table(title="BEBR: SDC against ADC, every judged query, nDCG@10 (/ MiniLM flat) ± seed SD")
    columns = ("set", "collection (queries)", "bits", "flat", "SDC", "ADC", "Hamming", "ADC − SDC ± SE")
    for column in (*columns, "ms/query SDC", "ADC", "Hamming"):
        table.add_column(column, justify="left" if column in columns[:2] else "right")
    gains: dict[tuple[str, int], list[float]] = {}
    for group, names in (("choice", args.choose), ("confirmation", args.confirm)):
        for name in names:
            folder = collection_folder(name, args.work)
            judged = load_eval_dataset(folder, "all")
            flat_path = args.work / name.replace("/", "-") / "flat"
            if not flat_path.is_dir():
                build_index(folder, flat_path, encoder="minilm", show_progress=False)
            index = Index.load(flat_path)
            flat = per_query(retrieve(index, judged, 1000, show_progress=False), judged)
            base = mean_se(list(flat.values()))[0]
            vectors = FaissBackend.load(flat_path).exact_vectors()
            queries = index.encoder.encode_queries(list(judged.queries.values()))
            exact = index.backend
            for bits in args.bits:
                runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
                speed: dict[str, float] = {}
                for seed in range(args.seeds):
                    binarizer = fit_start(vectors, bits, seed)  # what `bebr:BITS` indexes fit (seed 0)
                    codes = binarizer.encode(vectors)
                    for mode in MODES:
                        index.backend = BebrBackend(binarizer, codes, mode)  # rows in the flat index's order
                        runs[mode].append(
                            per_query(retrieve(index, judged, 1000, show_progress=False), judged)
                        )
                        speed.setdefault(mode, milliseconds(index.backend, queries))
                index.backend = exact
                scores = {mode: {q: np.mean([r[q] for r in rs]) for q in flat} for mode, rs in runs.items()}
                means = {mode: mean_se(list(v.values()))[0] for mode, v in scores.items()}
                spread = {
                    mode: statistics.stdev([mean_se(list(r.values()))[0] for r in rs]) if len(rs) > 1 else 0.0
                    for mode, rs in runs.items()
                }
                diff, se = mean_se([scores["adc"][q] - scores["sdc"][q] for q in flat])
                gains.setdefault((group, bits), []).append(means["adc"] / means["sdc"])
                table.add_row(
                    group,
                    f"{name} ({len(flat)})",
                    str(bits),
                    f"{base:.4f}",
                    *(f"{means[m]:.4f} ({means[m] / base:.3f}) ±{spread[m]:.3f}" for m in MODES),
                    f"{diff:+.4f} ± {se:.4f}",
                    *(f"{speed[m]:.3f}" for m in MODES),
                )
    console.print(table)
    for (group, bits), ratios in gains.items():
        console.print(f"{group} set, {bits} bits: ADC / SDC nDCG@10, collection mean {np.mean(ratios):.3f}")


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
