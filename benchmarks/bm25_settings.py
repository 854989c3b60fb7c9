"""Which BM25 k1 and b should `bm25` default to, chosen on some collections and confirmed on others?

Tessera's `bm25` took pyserini's defaults, k1=0.9 and b=0.4. Every setting applies at search
time, so one Lucene index per collection serves the whole grid, searched on its contents field
alone (`title=0`, pyserini's one-field search; the title weight is `bm25_title.py`'s question).
Every judged query of each original collection (Cranfield 225, CISI 76, MEDLINE 30, LISA 35;
BM25 learns nothing from them, so no split is needed), nDCG@10 and R@100 at each (k1, b). The
setting is chosen by its mean nDCG@10 ratio to the old default over the `--choose` collections
alone; the `--confirm` collections only report it.

`--title W` runs the same grid with the title field weighted (section 23), on an index that has it.

Per collection: the old default, Lucene's own BM25Similarity default (k1=1.2, b=0.75), the
chosen setting and the choice set's runners-up, each with nDCG@10 ± SE over queries, / the old
default, the difference ± paired SE and its two-sided p (Fisher randomization, seeded), and
R@100 (what a reranker or RAG context could still find). Then the RRF(BM25, MiniLM) hybrid with
either BM25, since the hybrid is the anchor of every dense comparison. `--plot` draws the grid's
mean ratio on each set as a heatmap.

    TESSERA_DATA_DIR=../shared/data python benchmarks/bm25_settings.py [--work DIR] [--plot grid.png]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from tessera import config
from tessera.data.corpus import open_corpus
from tessera.data.datasets import load_eval_dataset
from tessera.durable import write_text_atomic
from tessera.eval.evaluate import per_query_scores
from tessera.eval.runs import retrieve
from tessera.eval.significance import mean_se, paired_p_value
from tessera.indexing.builder import build_index
from tessera.models.bm25 import BM25
from tessera.retrieval.fusion import fuse
from tessera.retrieval.index import Index

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rerank import built_indexes  # noqa: E402  (the BM25 and MiniLM indexes these benchmarks share)

METRICS = ["nDCG@10", "R@100"]
DEPTH = 100
OLD = (0.9, 0.4)  # pyserini's defaults, Tessera's until this benchmark
LUCENE = (1.2, 0.75)  # Lucene's BM25Similarity defaults
RUNNERS_UP = 4


def name_of(setting: tuple[float, float]) -> str:
    return f"k1={setting[0]:g}, b={setting[1]:g}"


def titled_bm25(collection: str, root: Path, console: Console) -> Path:
    """A BM25 index of `collection` with the title field (the shared `bm25` may predate it)."""
    path = root / "bm25-fields"
    if not (path / "manifest.json").is_file():
        console.print(f"indexing {collection} with bm25 (contents and title fields)")
        build_index(collection, path, encoder="bm25", show_progress=False)
    return path


def sweep(
    collection: str, root: Path, grid: list[tuple[float, float]], console: Console, title: float = 0.0
) -> dict:
    """Per grid setting: BM25's and the RRF(BM25, MiniLM) hybrid's {metric: {query: value}}, and
    what BM25's top 10 looks like beside MiniLM's (mean words, shared documents)."""
    data = load_eval_dataset(collection)
    paths = built_indexes(collection, root, console)
    bm25 = titled_bm25(collection, root, console) if title else paths["BM25"]
    words = {doc.id: len(doc.contents.split()) for doc in open_corpus(collection)}
    dense = retrieve(Index.load(paths["MiniLM"]), data, DEPTH, False)
    out: dict = {"alone": {}, "hybrid": {}, "words": {}, "shared": {}}
    for setting in grid:
        index = Index.load(bm25, search_params={"k1": setting[0], "b": setting[1], "title": title})
        run, out["alone"][setting], out["hybrid"][setting] = alone_and_fused(index, data, dense)
        tops = {q: [hit.doc_id for hit in hits[:10]] for q, hits in run.items()}
        out["words"][setting] = float(np.mean([words[d] for top in tops.values() for d in top]))
        out["shared"][setting] = float(
            np.mean(
                [
                    len(set(top) & {hit.doc_id for hit in dense.get(q, [])[:10]}) / 10
                    for q, top in tops.items()
                ]
            )
        )
    out["dense_words"] = float(np.mean([words[hit.doc_id] for hits in dense.values() for hit in hits[:10]]))
    out["corpus_words"] = float(np.mean(list(words.values())))
    return out


def alone_and_fused(index: Index, data, dense: dict) -> tuple[dict, dict, dict]:
    """BM25's run, and its and the RRF(BM25, MiniLM) hybrid's {metric: {query: value}}."""
    run = retrieve(index, data, DEPTH, False)
    fused = fuse([run, dense], "rrf", depth=DEPTH, top=DEPTH)
    return run, per_query_scores(run, data, METRICS), per_query_scores(fused, data, METRICS)


def values(by_metric: dict, metric: str, queries: list[str]) -> np.ndarray:
    return np.array([by_metric[metric][q] for q in queries])


def ratio(scores: dict, key, baseline) -> float:
    """Mean nDCG@10 at setting `key` / at setting `baseline`."""
    new, old = (np.mean(list(scores[s]["nDCG@10"].values())) for s in (key, baseline))
    return float(new / old)


USES = {"alone": "BM25 alone", "hybrid": "RRF(BM25, MiniLM)"}


def add_set_columns(table: Table, groups: dict[str, list[str]]) -> None:
    for label in USES.values():
        for group in groups:
            table.add_column(f"{label}, {group}", justify="right")


def set_cells(ratios: dict, groups: dict[str, list[str]], key) -> list[str]:
    """Mean ratio (min) over each set of collections, alone then fused: `add_set_columns`' cells."""
    cells = []
    for use in USES:
        for members in groups.values():
            r = [ratios[use][c][key] for c in members]
            cells.append(f"{np.mean(r):.3f}x ({min(r):.3f}x)" if r else "–")
    return cells


def comparison(title: str, rows: dict[str, dict], baseline: str) -> Table:
    """Each row's metrics beside the baseline row's, with the paired difference."""
    queries = list(rows[baseline]["nDCG@10"])
    table = Table(title=f"{title}: {len(queries)} judged queries")
    table.add_column("BM25 setting")
    for metric in METRICS:
        table.add_column(f"{metric} ± SE", justify="right")
        table.add_column(f"/ {baseline}", justify="right")
    table.add_column("Δ nDCG@10 ± paired SE (p)", justify="right")
    for name, by_metric in rows.items():
        cells = []
        for metric in METRICS:
            mean, se = mean_se(values(by_metric, metric, queries))
            reference = values(rows[baseline], metric, queries).mean()
            cells += [f"{mean:.4f} ± {se:.3f}", f"{mean / reference:.3f}x"]
        delta = ""
        if name != baseline:
            old, new = (values(r, "nDCG@10", queries) for r in (rows[baseline], by_metric))
            d, d_se = mean_se(new - old)
            delta = f"{d:+.4f} ± {d_se:.4f} (p {paired_p_value('fisher', old, new):.3f})"
        table.add_row(name, *cells, delta)
    return table


def heatmap(ratios: dict, groups: dict[str, list[str]], k1s, bs, chosen, path: Path) -> None:
    """Mean nDCG@10 ratio to the old default over the grid: BM25 alone and in the hybrid (rows),
    on each set of collections (columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(groups), figsize=(5.2 * len(groups), 8.4), squeeze=False)
    for row, use in enumerate(("alone", "hybrid")):
        for ax, (label, collections) in zip(axes[row], groups.items(), strict=True):
            grid = np.array(
                [[np.mean([ratios[use][c][(k, b)] for c in collections]) for b in bs] for k in k1s]
            )
            image = ax.imshow(grid, cmap="viridis", origin="lower", aspect="auto")
            ax.set_xticks(range(len(bs)), [f"{b:g}" for b in bs])
            ax.set_yticks(range(len(k1s)), [f"{k:g}" for k in k1s])
            ax.set_xlabel("b")
            ax.set_ylabel("k1")
            what = "BM25" if use == "alone" else "RRF(BM25, MiniLM)"
            ax.set_title(f"{what}, {label}: nDCG@10 / (k1=0.9, b=0.4)\n{', '.join(collections)}", fontsize=9)
            for i, k1 in enumerate(k1s):
                for j, b in enumerate(bs):
                    ax.text(
                        j,
                        i,
                        f"{grid[i, j]:.3f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if grid[i, j] < grid.mean() else "black",
                        fontweight="bold" if (k1, b) in (chosen, OLD) else "normal",
                    )
            fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def tops_table(collection: str, swept: dict, shown: list[tuple[float, float]]) -> Table:
    """What each setting puts in its top 10: document length, and overlap with MiniLM's top 10."""
    table = Table(title=f"{collection}: top 10 (corpus mean {swept['corpus_words']:.0f} words)")
    table.add_column("ranking")
    table.add_column("mean words", justify="right")
    table.add_column("shared with MiniLM's top 10", justify="right")
    for setting in shown:
        table.add_row(
            f"BM25 {name_of(setting)}", f"{swept['words'][setting]:.0f}", f"{swept['shared'][setting]:.2f}"
        )
    table.add_row("MiniLM", f"{swept['dense_words']:.0f}", "1")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--choose", nargs="+", default=["cranfield", "glasgow/cisi"])
    parser.add_argument("--confirm", nargs="*", default=["glasgow/medline", "glasgow/lisa"])
    parser.add_argument("--k1", nargs="+", type=float, default=[0.6, 0.9, 1.2, 1.5, 2.0, 2.5, 3.0])
    parser.add_argument("--b", nargs="+", type=float, default=[0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9, 1.0])
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "benchmarks" / "rerank")
    parser.add_argument("--plot", type=Path, default=None, help="PNG heatmaps of the grid")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--title", type=float, default=0.0, help="title field weight at every grid point (0: contents alone)"
    )
    args = parser.parse_args()
    console = Console(width=200)
    grid = [(k1, b) for k1 in args.k1 for b in args.b]
    for fixed in (OLD, LUCENE):
        if fixed not in grid:
            grid.append(fixed)
    collections = [*args.choose, *args.confirm]
    swept = {c: sweep(c, args.work / c.replace("/", "-"), grid, console, args.title) for c in collections}
    ratios = {use: {c: {s: ratio(swept[c][use], s, OLD) for s in grid} for c in collections} for use in USES}
    choice = sorted(grid, key=lambda s: -np.mean([ratios["alone"][c][s] for c in args.choose]))
    chosen = choice[0]
    console.print(
        f"best for BM25 alone on {', '.join(args.choose)}: {name_of(chosen)} "
        f"(the default is {name_of((BM25.k1, BM25.b))})"
    )
    shown = list(dict.fromkeys([OLD, LUCENE, *choice[: 1 + RUNNERS_UP]]))
    for c in collections:
        console.print(comparison(c, {name_of(s): swept[c]["alone"][s] for s in shown}, name_of(OLD)))
        fused = {f"RRF(BM25 {name_of(s)}, MiniLM)": swept[c]["hybrid"][s] for s in shown}
        console.print(comparison(f"{c}, hybrid", fused, f"RRF(BM25 {name_of(OLD)}, MiniLM)"))
        console.print(tops_table(c, swept[c], shown))
    groups = {"choice": args.choose, "confirmation": args.confirm}
    summary = Table(title="nDCG@10 / (k1=0.9, b=0.4): mean over each set (min over its collections)")
    summary.add_column("BM25 setting")
    summary.add_column("rank alone, choice", justify="right")
    add_set_columns(summary, groups)
    for s in shown:
        summary.add_row(name_of(s), str(choice.index(s) + 1), *set_cells(ratios, groups, s))
    console.print(summary)
    if args.plot:
        heatmap(ratios, {k: v for k, v in groups.items() if v}, args.k1, args.b, chosen, args.plot)
        console.print(f"plot: {args.plot}")
    if args.json:
        out = {
            use: {c: {name_of(s): r for s, r in by.items()} for c, by in r_.items()}
            for use, r_ in ratios.items()
        }
        write_text_atomic(args.json, json.dumps({"best_alone": name_of(chosen), "ratios": out}, indent=1))


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
