"""Does fusing BM25 with a dense system by normalised scores beat reciprocal rank fusion, and
which weight holds on collections it was not chosen on?

RRF (Cormack et al. 2009) reads ranks only; `wsum` (tessera.retrieval.fusion) sums each run's
min-max normalised scores, so it keeps how far ahead a document is, at the price of a weight.
Bruch et al. (2023) found such a convex combination ahead of RRF once its weight is tuned; here
the weight is chosen on `--choose` collections and only reported on `--confirm` ones.

Per collection, on the `test` queries: BM25, MiniLM flat and any `--system NAME=index:PATH`
(a trained index; `{collection}` in PATH is replaced by the collection's folder name) are run by
the evaluation suite (saved under `--work`, so a rerun retrieves nothing); each dense system D
is fused with BM25 by RRF and by wsum with D's weight w in 0.1..0.9 (BM25's 1 - w). Printed:
1. the sweep for MiniLM, wsum / RRF per collection, with the means over each set and the weight
   chosen on the choice set;
2. per collection and system: nDCG@10 ± its standard error over queries, / the RRF(BM25, MiniLM)
   anchor, and wsum minus RRF of the same pair per query ± its paired standard error.

    TESSERA_DATA_DIR=../shared/data python benchmarks/score_fusion.py \\
        --choose cranfield-beir cisi-beir --confirm medline-beir glasgow/lisa --work /tmp/fusion \\
        --plot docs/score_fusion.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tessera import config
from tessera.data.datasets import load_eval_dataset
from tessera.eval.evaluate import per_query_scores
from tessera.eval.runs import read_trec
from tessera.eval.significance import mean_se
from tessera.eval.suite import run_suite
from tessera.eval.systems import parse_system, slug
from tessera.retrieval.fusion import Run, fuse

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generalization import collection_folder  # noqa: E402

METRIC = "nDCG@10"
WEIGHTS = [round(0.1 * i, 1) for i in range(1, 10)]  # the dense run's weight; BM25 gets 1 - w
EQUAL = 0.5
BASE = ["bm25", "minilm"]


def per_query(run: Run, folder: Path) -> dict[str, float]:
    return per_query_scores(run, load_eval_dataset(folder, "test"), [METRIC])[METRIC]


def mean(values: dict[str, float]) -> float:
    return sum(values.values()) / len(values)


def collect(
    folders: dict[str, Path], systems: list[str], work: Path, console: Console
) -> dict[str, dict[str, dict]]:
    """{collection: {"runs": {system: Run}, "folder": Path}} for the test split, via the suite."""
    names = [parse_system(text).name for text in systems]
    suite = "folders:" + ",".join(str(folder) for folder in folders.values())
    log = lambda line: console.print(line, markup=False, highlight=False)  # noqa: E731 (paths hold [..])
    results = run_suite(suite, systems, work / "suite", metrics=[METRIC], plots=False, log=log)
    out = {}
    for collection, folder in folders.items():
        dataset = f"{folder.name}/test"
        done = results["results"].get(dataset, {})
        runs = {
            name: read_trec(work / "suite" / "runs" / slug(dataset) / f"{slug(name)}.trec")
            for name in names
            if name in done
        }
        out[collection] = {"runs": runs, "folder": folder}
    return out


def fused_scores(data: dict, dense: str) -> dict[str, dict[str, float]]:
    """Per-query nDCG@10 of RRF(BM25, dense) and of wsum at every weight (keys 'rrf', 0.1, ...)."""
    runs = [data["runs"]["bm25"], data["runs"][dense]]
    out = {"rrf": per_query(fuse(runs, "rrf"), data["folder"])}
    for w in WEIGHTS:
        out[w] = per_query(fuse(runs, "wsum", [1 - w, w]), data["folder"])
    return out


def sweep_table(sweeps: dict[str, dict], choose: list[str], confirm: list[str]) -> tuple[Table, float]:
    """wsum(BM25, MiniLM) / RRF per weight and collection; the weight best on the choice set."""
    table = Table(title=f"{METRIC}: wsum(BM25^(1-w), MiniLM^w) / RRF(BM25, MiniLM), test queries")
    table.add_column("w (MiniLM)")
    for name in [*choose, *confirm]:
        table.add_column(f"{name}{' (choice)' if name in choose else ''}", justify="right")
    table.add_column("mean, choice", justify="right")
    table.add_column("mean, confirmation", justify="right")
    ratios = {
        name: {w: mean(sweeps[name][w]) / mean(sweeps[name]["rrf"]) for w in WEIGHTS} for name in sweeps
    }

    def over(names: list[str], w: float) -> float | None:
        present = [ratios[n][w] for n in names if n in ratios]
        return sum(present) / len(present) if present else None

    chosen = max(WEIGHTS, key=lambda w: (over(choose, w) or 0.0, -abs(w - EQUAL)))
    for w in WEIGHTS:
        mark = " (chosen)" if w == chosen else " (equal)" if w == EQUAL else ""
        cells = [f"{ratios[n][w]:.3f}x" if n in ratios else "–" for n in [*choose, *confirm]]
        means = [over(choose, w), over(confirm, w)]
        table.add_row(f"{w}{mark}", *cells, *(f"{m:.3f}x" if m is not None else "–" for m in means))
    return table, chosen


def system_table(name: str, data: dict, chosen: float, dense: list[str]) -> Table:
    """Every system alone and fused with BM25, against the RRF(BM25, MiniLM) anchor."""
    folder = data["folder"]
    alone = {system: per_query(data["runs"][system], folder) for system in ["bm25", *dense]}
    anchor = per_query(fuse([data["runs"]["bm25"], data["runs"]["minilm"]], "rrf"), folder)
    table = Table(title=f"{name}: {len(anchor)} test queries")
    for column in ("system", METRIC, "± SE", "/ anchor", "Δ vs RRF of the pair ± paired SE"):
        table.add_column(column, justify="left" if column == "system" else "right")

    def row(label: str, scores: dict[str, float], rrf: dict[str, float] | None = None) -> None:
        value, se = mean_se(list(scores.values()))
        delta = ""
        if rrf is not None:
            d, d_se = mean_se([scores[q] - rrf[q] for q in rrf])
            delta = f"{d:+.4f} ± {d_se:.4f}"
        table.add_row(label, f"{value:.4f}", f"{se:.3f}", f"{value / mean(anchor):.3f}", delta)

    row("BM25", alone["bm25"])
    for system in dense:
        runs = [data["runs"]["bm25"], data["runs"][system]]
        rrf = per_query(fuse(runs, "rrf"), folder)
        row(system, alone[system])
        row(f"RRF(BM25, {system}){' = the anchor' if system == 'minilm' else ''}", rrf)
        row(f"wsum(BM25, {system}), equal weights", per_query(fuse(runs, "wsum"), folder), rrf)
        if chosen != EQUAL:
            wsum = per_query(fuse(runs, "wsum", [1 - chosen, chosen]), folder)
            row(f"wsum(BM25^{1 - chosen:.1f}, {system}^{chosen})", wsum, rrf)
    return table


def plot(sweeps: dict[str, dict], choose: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for name, sweep in sweeps.items():
        ratios = [mean(sweep[w]) / mean(sweep["rrf"]) for w in WEIGHTS]
        style = "-o" if name in choose else "--s"
        axes.plot(WEIGHTS, ratios, style, label=f"{name} ({'choice' if name in choose else 'confirmation'})")
    axes.axhline(1.0, color="grey", linewidth=0.8)
    axes.set_xlabel("MiniLM's weight w in wsum (BM25: 1 - w)")
    axes.set_ylabel(f"{METRIC} / RRF(BM25, MiniLM)")
    axes.set_title("Score fusion against RRF, test queries")
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--choose", nargs="+", default=["cranfield-beir", "cisi-beir"])
    parser.add_argument("--confirm", nargs="*", default=["medline-beir", "glasgow/lisa"])
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "benchmarks" / "score-fusion")
    parser.add_argument("--system", action="append", default=[], help="NAME=index:PATH (trained)")
    parser.add_argument("--plot", type=Path, help="Write the sweep as a PNG here.")
    args = parser.parse_args()
    console = Console(width=160)
    names = [*args.choose, *args.confirm]
    folders = {name: collection_folder(name, args.work) for name in names}
    extra = [parse_system(text).name for text in args.system]
    data = collect(folders, [*BASE, *args.system], args.work, console)
    sweeps = {name: fused_scores(data[name], "minilm") for name in names}
    table, chosen = sweep_table(sweeps, args.choose, args.confirm)
    console.print(table)
    console.print(f"weight chosen on {', '.join(args.choose)}: MiniLM {chosen}, BM25 {1 - chosen:.1f}")
    for name in names:
        dense = ["minilm", *(system for system in extra if system in data[name]["runs"])]
        console.print(system_table(name, data[name], chosen, dense))
    if args.plot:
        plot(sweeps, args.choose, args.plot)
        console.print(f"plot: {args.plot}")


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
