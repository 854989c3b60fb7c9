"""Job: the tables and plot of benchmarks/generalization.py from its saved per-query scores:
per collection (ratios to MiniLM flat and the RRF anchor, paired differences to the anchor and
to a system's default settings), the cross-collection overview, and `--paired` recipe
differences over seeds.
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tessera.eval.significance import mean_se


def summarize(scores: dict[str, float]) -> tuple[float, float]:
    return mean_se(list(scores.values()))


def report(name: str, results: dict[str, dict[str, float]], console: Console) -> None:
    flat = summarize(results["MiniLM flat"])[0]
    anchor = summarize(results["RRF(BM25, MiniLM flat)"])[0]
    table = Table(title=f"{name}: nDCG@10 on {len(results['BM25'])} test queries (never trained on)")
    columns = ("system", "nDCG@10", "± SE", "/ MiniLM flat", "/ RRF anchor", "Δ anchor ± paired SE")
    defaults = {
        system: results[base]
        for system in results
        if (base := default_settings(system)) != system and base in results
    }
    for column in (*columns, "Δ defaults ± paired SE") if defaults else columns:
        table.add_column(column, justify="left" if column == "system" else "right")
    anchor_scores = results["RRF(BM25, MiniLM flat)"]
    for system, scores in results.items():
        mean, se = summarize(scores)
        cells = [f"{mean / flat:.3f}", f"{mean / anchor:.3f}", paired(scores, anchor_scores)]
        if defaults:
            cells.append(paired(scores, defaults[system]) if system in defaults else "")
        table.add_row(escape(system), f"{mean:.4f}", f"{se:.4f}", *cells)
    console.print(table)


def paired(scores: dict[str, float], baseline: dict[str, float]) -> str:
    """Mean per-query difference to `baseline` with its paired standard error."""
    delta, delta_se = mean_se([scores[q] - baseline[q] for q in baseline])
    return f"{delta:+.4f} ± {delta_se:.4f}"


def compare(
    sets: dict[str, dict[str, dict[str, dict[str, float]]]], pairs: list[list[str]], console: Console
) -> None:
    """`--paired A B`: per collection, recipe A's seed means and SD, and A - B per query (each
    recipe's scores averaged over its seeds) with the paired standard error."""
    table = Table(title="Paired differences (recipes averaged over their seeds)")
    found = {recipe(s) for collections in sets.values() for results in collections.values() for s in results}
    for name in {name for pair in pairs for name in pair} - found:
        console.print(f"[yellow]--paired: no saved system is named '{escape(name)}'[/yellow]")
    for column in ("collection", "A", "A per seed", "seed SD", "B", "A − B ± paired SE"):
        table.add_column(column)
    for collections in sets.values():
        for name, results in collections.items():
            for a, b in pairs:
                runs = {r: [v for s, v in results.items() if recipe(s) == r] for r in (a, b)}
                if not all(runs.values()):
                    continue
                mean = {r: {q: sum(v[q] for v in vs) / len(vs) for q in vs[0]} for r, vs in runs.items()}
                seeds = [summarize(v)[0] for v in runs[a]]
                spread = f"{statistics.stdev(seeds):.4f}" if len(seeds) > 1 else ""
                per_seed = " / ".join(f"{m:.4f}" for m in seeds)
                table.add_row(name, escape(a), per_seed, spread, escape(b), paired(mean[a], mean[b]))
    console.print(table)


def default_settings(system: str) -> str:
    """The same system trained with the defaults (`JPQ48 [qrels] {negatives=30} s0` -> `JPQ48 [qrels] s0`)."""
    return re.sub(r" \{[^}]*\}", "", system)


def recipe(system: str) -> str:
    """A system's name without its seed (`query tower [qrels] s2` -> `query tower [qrels]`)."""
    return re.sub(r" s\d+(?=\)|$)", "", system)


def overview(
    sets: dict[str, dict[str, dict[str, dict[str, float]]]], console: Console, plot: Path | None
) -> None:
    """Mean ratio to MiniLM flat and to the RRF anchor per recipe and collection, seeds averaged
    (with their spread), and the mean over each set of collections."""
    names = [name for group in sets.values() for name in group]
    table = Table(title="nDCG@10 / RRF(BM25, MiniLM flat) per collection (seed mean; min-max over seeds)")
    table.add_column("recipe")
    for group, collections in sets.items():
        for name in collections:
            table.add_column(f"{name} ({group})", justify="right")
        table.add_column(f"mean {group}", justify="right")
    recipes = list(dict.fromkeys(recipe(s) for group in sets.values() for res in group.values() for s in res))
    ratios: dict[str, dict[str, float]] = {}
    for rec in recipes:
        cells = []
        for collections in sets.values():
            found = []
            for name, results in collections.items():
                anchor = summarize(results["RRF(BM25, MiniLM flat)"])[0]
                seeds = [summarize(v)[0] / anchor for s, v in results.items() if recipe(s) == rec]
                if not seeds:
                    cells.append("-")
                    continue
                mean = sum(seeds) / len(seeds)
                ratios.setdefault(rec, {})[name] = mean
                found.append(mean)
                spread = f" ({min(seeds):.3f}-{max(seeds):.3f})" if len(seeds) > 1 else ""
                cells.append(f"{mean:.3f}{spread}")
            cells.append(f"{sum(found) / len(found):.3f}" if found else "-")
        table.add_row(escape(rec), *cells)
    console.print(table)
    if plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        shown = [rec for rec in recipes if len(ratios.get(rec, {})) == len(names)]
        fig, ax = plt.subplots(figsize=(10, 0.35 * len(shown) + 1.5))
        height = 0.8 / len(names)
        for i, name in enumerate(names):
            ax.barh(
                [j + i * height for j in range(len(shown))],
                [ratios[r][name] for r in shown],
                height,
                label=name,
            )
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_yticks([j + 0.4 - height / 2 for j in range(len(shown))], shown, fontsize=8)
        ax.set_xlabel("nDCG@10 / RRF(BM25, MiniLM flat), test queries")
        ax.legend(fontsize=8)
        ax.invert_yaxis()
        fig.tight_layout()
        fig.savefig(plot, dpi=120)
