"""Passage size and overlap for `index --chunk`: which setting holds across collections?

Question: a document longer than MiniLM's 256-wordpiece window is indexed by its first 256
tokens unless `--chunk TOKENS[:OVERLAP]` splits it into passages, each document scored by its
best (MaxP); the truncation warning suggests `256:32`. Which passage size and overlap rank long
documents best, and what does each cost to encode? Chosen on Cranfield and CISI, confirmed on
MEDLINE and LISA, which the choice does not see.

Tasks: each collection as it is (`plain`: abstracts, 17-40% of them longer than the window), and
`tessera data longdoc` at 2,048 tokens, seed 0, both modes: `mix` (the whole corpus packed into
long documents; a long document's grade is its best member's) and `needle` (one judged document
at a random place among fillers no query judges relevant; 200 long documents). Long documents
built by concatenation change subject at every member's end, which favours passages about a
member's size; the plain collections pull the other way (a passage shorter than the abstract
loses some of its context), so a setting must hold on both. Every judged query
(`qrels/all.tsv`): nothing here is trained, so no query needs holding out. Each setting is
built in this process (MiniLM loaded once; the clock counts indexing), then searched for the top
100 documents. Ratios are against `256:32`; `± se` is the paired standard error of the
per-query nDCG@10 difference. Results are saved under `--work` as they come, so a rerun resumes.

    TESSERA_DATA_DIR=/work/data python benchmarks/chunking.py --work /tmp/chunking
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from tessera import config
from tessera.data.datasets import load_eval_dataset
from tessera.eval.evaluate import per_query_scores
from tessera.eval.runs import retrieve
from tessera.eval.significance import mean_se
from tessera.indexing.builder import build_index
from tessera.models.registry import load_encoder
from tessera.retrieval.index import Index

CHOICE = ("cranfield", "cisi")
CONFIRMATION = ("medline", "lisa")
SETTINGS = ("truncated", "128", "128:32", "256", "256:32", "256:64")  # "truncated": no --chunk
BASELINE = "256:32"
TOKENS = 2048
NEEDLE_DOCS = 200
METRICS = ["nDCG@10", "R@100"]


MODES = ("plain", "mix", "needle")


def task_folder(collection: str, mode: str, work: Path) -> Path:
    """The collection itself (`plain`), or its long-document task, written once by `tessera data longdoc`."""
    if mode == "plain":
        return config.data_dir() / f"{collection}-beir"
    folder = work / "tasks" / f"{collection}-{mode}-{TOKENS}"
    if not folder.is_dir():
        cap = ["--docs", str(NEEDLE_DOCS)] if mode == "needle" else []
        command = [sys.executable, "-m", "tessera", "data", "longdoc", f"{collection}-beir"]
        command += ["--tokens", str(TOKENS), "--mode", mode, *cap, "-o", str(folder)]
        made = subprocess.run(command, capture_output=True, text=True)
        if made.returncode != 0:  # say why, not only that the command failed
            raise SystemExit(f"tessera data longdoc {collection}-beir: {made.stderr.strip()[-2000:]}")
    return folder


def measure(task: Path, setting: str, work: Path, console: Console) -> dict:
    """nDCG@10 and R@100 per judged query, passages and seconds of one build (saved, resumed)."""
    saved = work / "results" / task.name / f"{setting.replace(':', '_')}.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    index_dir = work / "indexes" / task.name / setting.replace(":", "_")
    shutil.rmtree(index_dir, ignore_errors=True)
    chunk = None if setting == "truncated" else setting
    start = time.perf_counter()
    build_index(task, index_dir, encoder="minilm", chunk=chunk, show_progress=False)
    seconds = time.perf_counter() - start
    index = Index.load(index_dir)
    judged = load_eval_dataset(task, "all")
    per_query = per_query_scores(retrieve(index, judged, 100, show_progress=False), judged, METRICS)
    result = {
        "per_query": per_query,
        "docs": len(index),
        "vectors": len(index) if index.passages is None else len(index.passages),
        "seconds": seconds,
    }
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(result))
    shutil.rmtree(index_dir)  # the numbers are kept; the indexes would fill the disk
    ndcg = mean_se(list(per_query["nDCG@10"].values()))[0]
    console.log(f"{task.name} {setting}: nDCG@10 {ndcg:.4f}, {result['vectors']} vectors, {seconds:.0f} s")
    return result


def paired(result: dict, base: dict, key: str = "nDCG@10") -> tuple[float, float, float]:
    """Ratio of means, mean difference and its paired standard error over the same queries."""
    ids = sorted(base["per_query"][key])
    mine = np.array([result["per_query"][key][q] for q in ids])
    other = np.array([base["per_query"][key][q] for q in ids])
    difference, se = mean_se(list(mine - other))
    return (mine.mean() / other.mean() if other.mean() else float("nan")), difference, se


def report(results: dict[str, dict[str, dict]], console: Console) -> None:
    table = Table(title=f"--chunk settings, MiniLM MaxP: every judged query (ratios against {BASELINE})")
    for column in ("task", "queries", "setting", "vectors", "nDCG@10", "R@100", f"nDCG / {BASELINE}",
                   "diff ± se", "time / 256:32"):  # fmt: skip
        table.add_column(column, justify="left" if column in ("task", "setting") else "right")
    for task, found in results.items():
        base = found[BASELINE]
        for setting, result in found.items():
            ratio, difference, se = paired(result, base)
            table.add_row(
                task,
                str(len(result["per_query"]["nDCG@10"])),
                setting,
                str(result["vectors"]),
                f"{np.mean(list(result['per_query']['nDCG@10'].values())):.4f}",
                f"{np.mean(list(result['per_query']['R@100'].values())):.4f}",
                f"{ratio:.3f}x",
                f"{difference:+.4f} ± {se:.4f}",
                f"{result['seconds'] / base['seconds']:.2f}x",
            )
        table.add_section()
    console.print(table)
    summary = Table(title=f"Mean nDCG@10 ratio against {BASELINE} (min-max over the tasks)")
    sets = {"choice": CHOICE, "confirmation": CONFIRMATION}
    kinds = {"plain": ("beir",), "long": ("mix", "needle")}
    summary.add_column("setting")
    for name, kind in ((n, k) for n in sets for k in kinds):
        summary.add_column(f"{name}, {kind}", justify="right")
    for setting in SETTINGS:
        cells = []
        for collections in sets.values():
            for modes in kinds.values():
                ratios = [
                    paired(found[setting], found[BASELINE])[0]
                    for task, found in results.items()
                    if task.split("-")[0] in collections and task.split("-")[1] in modes and setting in found
                ]
                cells.append(
                    f"{np.mean(ratios):.3f}x ({min(ratios):.3f}-{max(ratios):.3f})" if ratios else "-"
                )
        summary.add_row(setting, *cells)
    console.print(summary)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "benchmarks" / "chunking")
    parser.add_argument("--collections", nargs="+", default=[*CHOICE, *CONFIRMATION])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS))
    args = parser.parse_args()
    console = Console(width=160)
    load_encoder("minilm")  # loaded once (cached), before any clock starts
    results: dict[str, dict[str, dict]] = {}
    for collection in args.collections:
        for mode in MODES:
            task = task_folder(collection, mode, args.work)
            results[task.name] = {s: measure(task, s, args.work, console) for s in args.settings}
    report(results, console)


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
