"""Which training settings should BEBR's binarizer default to, chosen across collections?

Question (issue 11): `train_binarizer`'s defaults (60 epochs, hidden width dim/2, lr 1e-3,
batches of 1024; what `tessera train bebr` runs, and what `bebr:BITS` indexes fitted until this
benchmark's first run) against other epoch counts, widths, learning rates and batch sizes: does
any keep more of MiniLM flat's nDCG@10 on collections the defaults were not chosen on, by more
than the noise? (Its answer: none does, the ITQ start alone included, so indexing now fits
that start: docs/results.md section 7.)

The binarizer is unsupervised (document embeddings in, no queries), so every judged query of a
collection (train and test splits together) scores it without leaking anything into training:
that gives the small collections more queries than their test splits alone. Each setting is
trained for several seeds (ITQ start and batch order) on one torch thread (the fit depends on
the thread count); per setting the table gives the seed mean, the seed spread, the ratio to
MiniLM flat, and the per-query difference to the defaults (seed means) with its paired
standard error. `epochs=0` is the starting point alone (ITQ rotation + greedy residual signs):
what the training itself adds. Sign bits of the raw embedding (`binary`) are the 1-bit floor.
Codes and queries go through the same `BebrBackend` SDC search that `bebr:BITS` indexes use.

    TESSERA_DATA_DIR=../shared/data python benchmarks/bebr_settings.py \\
        --choose cranfield-beir cisi-beir --confirm medline-beir glasgow/lisa --work /tmp/gen
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.markup import escape
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generalization import collection_folder, keyword_options  # noqa: E402

from tessera import config  # noqa: E402
from tessera.cli import at_least
from tessera.data.datasets import EvalDataset, load_eval_dataset  # noqa: E402
from tessera.eval.evaluate import per_query_scores  # noqa: E402
from tessera.eval.significance import mean_se  # noqa: E402
from tessera.indexing.binary_backend import BebrBackend, SignBinaryBackend  # noqa: E402
from tessera.indexing.builder import build_index  # noqa: E402
from tessera.retrieval.hits import Hit  # noqa: E402
from tessera.retrieval.index import Index  # noqa: E402
from tessera.training.bebr import train_binarizer  # noqa: E402

METRIC = "nDCG@10"
DEPTH = 100
SETTINGS = ["", "epochs=0", "epochs=20", "epochs=150", "hidden=96", "hidden=384", "lr=3e-4", "lr=3e-3"]


def bebr_options(setting: str) -> dict[str, float | int]:
    """`train_binarizer` keywords of a `--settings` item (bits and seed are the script's)."""
    return keyword_options(train_binarizer, setting, ("bits", "seed"), optional=("hidden",))


class Collection:
    """One collection's MiniLM vectors, judged queries and saved per-query scores."""

    def __init__(self, name: str, work: Path, console: Console):
        self.name, self.console = name, console
        folder = collection_folder(name, work)
        self.results = work / name.replace("/", "-") / "bebr-settings"
        self.results.mkdir(parents=True, exist_ok=True)
        flat = work / name.replace("/", "-") / "flat"
        if not flat.is_dir():
            build_index(folder, flat, encoder="minilm", show_progress=False)
        index = Index.load(flat)
        self.vectors = index.backend.exact_vectors()
        self.doc_ids = index.doc_ids
        splits = [load_eval_dataset(folder, split) for split in ("train", "test")]
        self.judged = EvalDataset(
            name,
            {q: text for data in splits for q, text in data.queries.items()},
            {q: judged for data in splits for q, judged in data.qrels.items()},
        )
        self.query_ids = sorted(self.judged.qrels)
        self.query_vectors = index.encoder.encode_queries([self.judged.queries[q] for q in self.query_ids])
        self.flat = self.scores(index.backend)
        index.close()

    def scores(self, backend) -> dict[str, float]:
        """nDCG@10 per judged query of a backend's top DEPTH."""
        values, ids = backend.search(self.query_vectors, DEPTH)
        run = {
            qid: [
                Hit(self.doc_ids[i], float(v), rank)
                for rank, (v, i) in enumerate(zip(row_v, row_i, strict=True), start=1)
                if i >= 0
            ]
            for qid, row_v, row_i in zip(self.query_ids, values, ids, strict=True)
        }
        return per_query_scores(run, self.judged, [METRIC])[METRIC]

    def bebr(self, bits: int, setting: str, seed: int) -> dict[str, float]:
        """Per-query nDCG@10 of one trained binarizer, computed once and saved."""
        saved = self.results / f"bebr{bits} {{{setting}}} s{seed}.json"
        if saved.is_file():
            return json.loads(saved.read_text())
        start = time.perf_counter()
        binarizer, _ = train_binarizer(
            self.vectors, bits, seed=seed, show_progress=False, **bebr_options(setting)
        )
        scores = self.scores(BebrBackend.build(binarizer, self.vectors))
        saved.write_text(json.dumps(scores))
        mean = mean_se(list(scores.values()))[0]
        self.console.log(
            f"{self.name}: {bits}-bit {{{escape(setting)}}} seed {seed}: {mean:.4f} "
            f"({time.perf_counter() - start:.0f} s)"
        )
        return scores


def seed_mean(runs: list[dict[str, float]]) -> dict[str, float]:
    return {qid: float(np.mean([run[qid] for run in runs])) for qid in runs[0]}


def table(
    col: Collection, results: dict[tuple[int, str], list[dict[str, float]]], console: Console
) -> dict[tuple[int, str], float]:
    """Print one collection's table; return each (bits, setting)'s seed-mean ratio to flat."""
    flat = mean_se(list(col.flat.values()))[0]
    out = Table(title=f"{col.name}: {len(col.query_ids)} judged queries, MiniLM flat {flat:.4f}")
    for name in ("bits", "setting", "nDCG@10 (seed mean)", "seed SD", "/ flat", "Δ defaults ± paired SE"):
        out.add_column(name, justify="left" if name == "setting" else "right")
    sign = mean_se(list(col.scores(SignBinaryBackend.build(col.vectors)).values()))[0]
    out.add_row("1", "sign bits (binary)", f"{sign:.4f}", "", f"{sign / flat:.3f}", "")
    ratios = {}
    defaults = {bits: seed_mean(runs) for (bits, setting), runs in results.items() if not setting}
    for (bits, setting), runs in results.items():
        means = [mean_se(list(run.values()))[0] for run in runs]
        per_query = seed_mean(runs)
        mean = float(np.mean(means))
        ratios[bits, setting] = mean / flat
        delta = mean_se([per_query[q] - defaults[bits][q] for q in col.query_ids]) if setting else (0.0, 0.0)
        out.add_row(
            str(bits),
            escape(setting or "defaults (train bebr)"),
            f"{mean:.4f}",
            f"{np.std(means, ddof=1):.4f}" if len(means) > 1 else "",
            f"{mean / flat:.3f}",
            f"{delta[0]:+.4f} ± {delta[1]:.4f}" if setting else "0",
        )
    console.print(out)
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--choose", nargs="*", default=["cranfield-beir", "cisi-beir"])
    parser.add_argument("--confirm", nargs="*", default=["medline-beir", "glasgow/lisa"])
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "benchmarks" / "generalization")
    parser.add_argument("--bits", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--settings", nargs="+", default=SETTINGS, help='"" = the defaults; KEY=VALUE[,KEY=VALUE]'
    )
    parser.add_argument("--seeds", type=at_least(1), default=3)
    parser.add_argument(
        "--threads", type=at_least(1), default=1, help="torch threads (the fit depends on them)"
    )
    args = parser.parse_args()
    settings = list(dict.fromkeys(["", *args.settings]))
    for setting in settings:
        try:
            bebr_options(setting)
        except ValueError as exc:
            parser.error(f"--settings {exc}")
    torch.set_num_threads(args.threads)
    console = Console(width=150)
    sets = {"choice": args.choose, "confirmation": args.confirm}
    ratios: dict[str, dict[str, dict[tuple[int, str], float]]] = {}
    for group, names in sets.items():
        for name in names:
            col = Collection(name, args.work, console)
            results = {
                (bits, setting): [col.bebr(bits, setting, seed) for seed in range(args.seeds)]
                for bits in args.bits
                for setting in settings
            }
            ratios.setdefault(group, {})[name] = table(col, results, console)
    summary = Table(title="nDCG@10 / MiniLM flat, seed mean, mean over each set of collections")
    summary.add_column("bits")
    summary.add_column("setting")
    for group, collections in ratios.items():
        summary.add_column(f"{group} ({', '.join(collections)})", justify="right")
    for bits in args.bits:
        for setting in settings:
            cells = [
                f"{np.mean([r[bits, setting] for r in collections.values()]):.3f}"
                for collections in ratios.values()
            ]
            summary.add_row(str(bits), escape(setting or "defaults (train bebr)"), *cells)
    console.print(summary)


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
