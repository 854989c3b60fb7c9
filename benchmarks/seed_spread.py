"""How much do the cross-validated headline rows move with the training seed?

Question: issue 11 asks for the spread over at least three seeds of its headline rows. Reads the
per-query scores `cross_validation.py` saved under `--work` for each `--seed` it was run with
(the folds do not depend on the seed; only training does) and prints, per collection and trained
system: nDCG@10 by seed, the seed standard deviation, the mean over seeds (each query's scores
averaged over the seeds, then over the queries), its ratio to the anchor RRF(BM25, MiniLM flat),
and the paired difference to the anchor with its standard error across queries. Untrained
systems are the same index for every seed and are left out.

    for s in 0 1 2; do TESSERA_DATA_DIR=../shared/data python benchmarks/cross_validation.py \\
        --collections medline-beir glasgow/lisa --work /tmp/cv --seed $s; done
    python benchmarks/seed_spread.py --collections medline-beir glasgow/lisa --work /tmp/cv
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tessera.cli import at_least
from tessera.eval.significance import mean_se

ANCHOR = "RRF(BM25, MiniLM flat)"
UNTRAINED = {"BM25", "MiniLM flat", ANCHOR, "OPQ48", "OPQ24", "BEBR 1-bit", "BEBR 2-bit"}


def load(folder: Path) -> dict[str, dict[str, float]]:
    """System name -> per-query nDCG@10, as `cross_validation.py` saved them."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def spread(name: str, work: Path, folds: int, seeds: list[int], console: Console) -> None:
    runs = {seed: load(work / name.replace("/", "-") / f"results-{folds}folds-s{seed}") for seed in seeds}
    anchor = runs[seeds[0]].get(ANCHOR)
    if anchor is None:
        console.print(f"{name}: no saved results for seed {seeds[0]} under {work}")
        return
    systems = [s for s in runs[seeds[0]] if s not in UNTRAINED and all(s in r for r in runs.values())]
    table = Table(title=f"{name}: {len(anchor)} queries out of fold, seeds {', '.join(map(str, seeds))}")
    columns = [*(f"seed {s}" for s in seeds), "seed SD", "mean", "/ anchor", "Δ anchor ± paired SE"]
    for column in ("system", *columns):
        table.add_column(column, justify="left" if column == "system" else "right")
    table.add_row(ANCHOR, *[""] * len(seeds), "", f"{mean_se(list(anchor.values()))[0]:.4f}", "1.000", "")
    for system in systems:
        by_seed = [mean_se(list(runs[s][system].values()))[0] for s in seeds]
        averaged = {q: statistics.fmean(runs[s][system][q] for s in seeds) for q in anchor}
        mean = mean_se(list(averaged.values()))[0]
        diff, se = mean_se([averaged[q] - anchor[q] for q in anchor])
        table.add_row(
            system,
            *(f"{v:.4f}" for v in by_seed),
            f"{statistics.stdev(by_seed):.4f}" if len(seeds) > 1 else "",
            f"{mean:.4f}",
            f"{mean / mean_se(list(anchor.values()))[0]:.3f}",
            f"{diff:+.4f} ± {se:.4f}",
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--collections", nargs="*", default=["medline-beir", "glasgow/lisa"])
    parser.add_argument("--work", type=Path, required=True, help="cross_validation.py's --work folder.")
    parser.add_argument("--folds", type=at_least(2), default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    console = Console(width=160)
    for name in args.collections:
        spread(name, args.work, args.folds, args.seeds, console)


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
