"""A query tower's frozen documents: encoded on every row with dropout, or once each in eval mode?

`train dense --freeze-documents` trains a query route against a frozen copy of the base model
for documents. Until this session the frozen route ran on every row's positive and hard
negative (the bulk of each step's work) and in training mode, so the documents carried
dropout noise that the index never has. `tessera/training/frozen_route.py` now runs it once per
document in eval mode. Question: what does that save, and does it change what the tower learns?

Per collection, K-fold cross-validation (`--split foldIofK-train|test`, every judged query scored
by a tower that never saw it): the tower trained both ways (the section 7 recipe: qrels + titles,
1 epoch, lr 1e-4, BM25 negatives, the same seed), each indexed with `build_index` and scored on
its fold's test queries. Printed: pooled nDCG@10 of MiniLM flat and both towers, the paired
difference after - before, and the seconds each training took (the two trained back to back per
fold, under the same load).

    TESSERA_DATA_DIR=../shared/data python benchmarks/query_tower_memo.py \\
        --collections cranfield-beir cisi-beir medline-beir glasgow/lisa --work /tmp/memo
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tessera import config
from tessera.cli import at_least
from tessera.data.datasets import load_eval_dataset
from tessera.eval.runs import retrieve
from tessera.eval.significance import mean_se
from tessera.indexing.builder import build_index
from tessera.retrieval.index import Index
from tessera.training import dense
from tessera.training.dense import train_dense
from tessera.training.examples import dataset_corpus
from tessera.training.negatives import negatives_index

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generalization import collection_folder, per_query  # noqa: E402

TOWER = {"freeze_documents": True, "learning_rate": 1e-4}  # results section 7's tower recipe
SYSTEMS = ("before", "after")  # every row with dropout / once per document, eval mode


@contextmanager
def memoized(on: bool):
    """`before` is the library without the memo: the route runs as sentence-transformers runs it."""
    if on:
        yield
        return
    saved = dense.memoize_route
    dense.memoize_route = lambda router: {}
    try:
        yield
    finally:
        dense.memoize_route = saved


def measure(name: str, args: argparse.Namespace, console: Console) -> dict:
    """Per-query nDCG@10 of flat and both towers over every fold, and each training's seconds."""
    folder, work = collection_folder(name, args.work), args.work / name.replace("/", "-")
    saved = work / f"results-{args.folds}folds-s{args.seed}.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    work.mkdir(parents=True, exist_ok=True)
    out: dict = {"scores": {s: {} for s in ("MiniLM flat", *SYSTEMS)}, "seconds": {s: [] for s in SYSTEMS}}
    flat = work / "flat"
    if not flat.is_dir():
        build_index(folder, flat, encoder="minilm", show_progress=False)
    negatives_index("bm25", dataset_corpus(folder, "train", None), show_progress=False)  # cached: untimed
    for i in range(1, args.folds + 1):
        split = f"fold{i}of{args.folds}"
        test = load_eval_dataset(folder, f"{split}-test")
        out["scores"]["MiniLM flat"].update(
            per_query(retrieve(Index.load(flat), test, show_progress=False), test)
        )
        for system in SYSTEMS:
            model, index = work / f"{system}_model_{split}", work / f"{system}_index_{split}"
            timing = work / f"{system}_model_{split}.seconds"
            if not model.is_dir():  # a rerun after an interruption keeps what was trained
                start = time.perf_counter()
                with memoized(system == "after"):
                    train_dense(
                        folder, model, split=f"{split}-train", seed=args.seed, show_progress=False, **TOWER
                    )
                timing.write_text(f"{time.perf_counter() - start:.3f}")
            out["seconds"][system].append(float(timing.read_text()))
            console.log(f"{name} {split}: {system} trained in {out['seconds'][system][-1]:.0f} s")
            if not index.is_dir():
                build_index(folder, index, encoder=str(model), show_progress=False)
            out["scores"][system].update(
                per_query(retrieve(Index.load(index), test, show_progress=False), test)
            )
    saved.write_text(json.dumps(out))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--collections", nargs="*", default=["cranfield-beir", "cisi-beir"])
    parser.add_argument("--folds", type=at_least(2), default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "benchmarks" / "query_tower_memo")
    args = parser.parse_args()
    console = Console(width=160)
    config.apply_offline_defaults()
    table = Table(
        title=f"Query tower's frozen documents: every row, dropout (before) or once, eval mode (after); "
        f"{args.folds}-fold"
    )
    for column in ("collection", "queries", "MiniLM flat", "before", "after", "after - before ± paired SE",
                   "train s before", "train s after", "before / after"):  # fmt: skip
        table.add_column(column, justify="left" if column == "collection" else "right")
    for name in args.collections:
        out = measure(name, args, console)
        scores, seconds = out["scores"], out["seconds"]
        mean = {s: mean_se(list(v.values()))[0] for s, v in scores.items()}
        diff, se = mean_se([scores["after"][q] - scores["before"][q] for q in scores["before"]])
        time_cells = [f"{sum(seconds[s]):.0f}" for s in SYSTEMS]
        ratio = f"{sum(seconds['before']) / sum(seconds['after']):.2f}x"
        table.add_row(
            name, str(len(scores["before"])), *(f"{mean[s]:.4f}" for s in ("MiniLM flat", *SYSTEMS)),
            f"{diff:+.4f} ± {se:.4f}", *time_cells, ratio,
        )  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
