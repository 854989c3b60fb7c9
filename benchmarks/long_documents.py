"""Long documents: does M2 (one vector per whole document) beat truncation, and match MaxP?

Question (issue 12): on long-document tasks built from real judgments (`tessera data longdoc`,
`mix` and `needle`, 2k/8k/32k tokens), how do BM25, MiniLM truncated to its 256-token window,
MiniLM over 256-token passages scored by the best passage (`index --chunk 256`, MaxP) and an
M2-BERT model trained here (`tessera train m2`) compare in nDCG@10 and R@100 on the test
queries, and what does each cost to encode (seconds per document, peak memory)?

Each (task, system) is indexed in its own subprocess (its peak RSS is that build's; the clock
starts after the model is loaded, so seconds per document are indexing: encoding, storing,
the faiss or Lucene build), then
evaluated; results are saved under `--work` as they come, so a rerun resumes. Needle tasks
are capped (`NEEDLE_DOCS`) to fit a CPU budget; the counts are printed with the tasks.

    tessera train m2 --dataset ../shared/data/cranfield-beir -o /tmp/long/m2-cran \\
        --distill-epochs 1 --max-length 2048 --max-steps 600
    TESSERA_DATA_DIR=../shared/data python benchmarks/long_documents.py \\
        --m2 /tmp/long/m2-cran --collections cranfield cisi --work /tmp/long --plot docs/long_documents.png
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import ir_measures
from rich.console import Console
from rich.table import Table

from tessera import config
from tessera.cli import at_least
from tessera.data.datasets import load_eval_dataset
from tessera.eval.runs import retrieve
from tessera.eval.significance import mean_se
from tessera.retrieval.index import Index

NEEDLE_DOCS = {2048: 200, 8192: 60, 32768: 16}
METRICS = [ir_measures.parse_measure(m) for m in ("nDCG@10", "R@100")]
BUILD = """
import json, resource, sys, time
from tessera.indexing.builder import build_index
from tessera.models.registry import canonical_spec, is_lexical, load_encoder
spec = canonical_spec(sys.argv[3])
if not is_lexical(spec):
    load_encoder(spec)  # loaded once per process (cached): the clock counts encoding, not loading
start = time.perf_counter()
build_index(sys.argv[1], sys.argv[2], encoder=spec, chunk=sys.argv[4] or None,
            batch_size=16, show_progress=False)
print(json.dumps({"seconds": time.perf_counter() - start,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def systems(m2: Path | None, distilled: Path | None = None) -> dict[str, tuple[str, str]]:
    """name -> (encoder spec, chunk)"""
    found = {
        "BM25": ("bm25", ""),
        "MiniLM truncated": ("minilm", ""),
        "MiniLM MaxP 256": ("minilm", "256"),
    }
    if m2 is not None:
        found["M2"] = (f"m2:{m2.resolve()}", "")
    if distilled is not None:
        found["M2 stage 1 only"] = (f"m2:{distilled.resolve()}", "")
    return found


def task_folder(collection: str, mode: str, tokens: int, work: Path) -> Path:
    folder = work / "tasks" / f"{collection}-{mode}-{tokens}"
    if not folder.is_dir():
        cap = ["--docs", str(NEEDLE_DOCS.get(tokens, 0))] if mode == "needle" else []
        command = [sys.executable, "-m", "tessera", "data", "longdoc", collection]
        command += ["--tokens", str(tokens), "--mode", mode]
        made = subprocess.run([*command, *cap, "-o", str(folder)], capture_output=True, text=True)
        if made.returncode != 0:  # say why, not only that the command failed
            raise SystemExit(f"tessera data longdoc {collection}: {made.stderr.strip()[-2000:]}")
    return folder


def measure(task: Path, name: str, spec: str, chunk: str, work: Path, console: Console) -> dict:
    saved = work / "results" / task.name / f"{name.replace(' ', '_')}.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    index_dir = work / "indexes" / task.name / name.replace(" ", "_")
    if index_dir.exists():
        import shutil

        shutil.rmtree(index_dir)
    build = subprocess.run(
        [sys.executable, "-c", BUILD, str(task), str(index_dir), spec, chunk],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    if build.returncode != 0:
        raise SystemExit(f"{task.name} {name}: build failed\n{build.stderr[-2000:]}")
    cost = json.loads(build.stdout.strip().splitlines()[-1])
    test = load_eval_dataset(task, "test")
    run = retrieve(Index.load(index_dir), test, 100, show_progress=False)
    scores = {qid: {h.doc_id: h.score for h in hits} for qid, hits in run.items()}
    per_query: dict[str, dict[str, float]] = {str(m): dict.fromkeys(test.qrels, 0.0) for m in METRICS}
    for found in ir_measures.iter_calc(METRICS, test.qrels, scores):
        per_query[str(found.measure)][found.query_id] = found.value
    docs = len(Index.load(index_dir))
    result = {"per_query": per_query, "docs": docs, **cost, "seconds_per_doc": cost["seconds"] / docs}
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(result))
    ndcg = mean_se(list(per_query["nDCG@10"].values()))[0]
    console.log(f"{task.name}: {name} nDCG@10 {ndcg:.4f}, {result['seconds_per_doc']:.2f} s/doc")
    return result


def saved_results(task: Path, work: Path) -> dict[str, dict]:
    """Every system's saved result for `task`, in the table's order."""
    names = systems(Path("m2"), Path("m2-distilled"))
    folder = work / "results" / task.name
    return {
        name: json.loads((folder / f"{name.replace(' ', '_')}.json").read_text())
        for name in names
        if (folder / f"{name.replace(' ', '_')}.json").is_file()
    }


def random_order(task: Path, work: Path, shuffles: int = 100) -> dict:
    """The chance level: per-query nDCG@10 and R@100 of random rankings, averaged over shuffles."""
    import random

    saved = work / "results" / task.name / "random.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    test = load_eval_dataset(task, "test")
    ids = [json.loads(line)["_id"] for line in (task / "corpus.jsonl").open(encoding="utf-8")]
    rng = random.Random(0)
    per_query = {str(m): dict.fromkeys(test.qrels, 0.0) for m in METRICS}
    for _ in range(shuffles):
        run = {}
        for qid in test.qrels:
            order = rng.sample(ids, min(100, len(ids)))
            run[qid] = {doc: float(100 - rank) for rank, doc in enumerate(order)}
        for found in ir_measures.iter_calc(METRICS, test.qrels, run):
            per_query[str(found.measure)][found.query_id] += found.value / shuffles
    result = {
        "per_query": per_query,
        "docs": len(ids),
        "seconds": 0.0,
        "peak_mb": 0.0,
        "seconds_per_doc": 0.0,
    }
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(result))
    return result


def ratio(result: dict, base: dict | None, key: str = "nDCG@10") -> str:
    """`result` over `base` in nDCG@10 (or R@100, or encode time per document)."""
    if base is None:
        return "-"
    if key == "time":
        return f"{result['seconds_per_doc'] / base['seconds_per_doc']:.2f}x"
    mine = mean_se(list(result["per_query"][key].values()))[0]
    other = mean_se(list(base["per_query"][key].values()))[0]
    return f"{mine / other:.3f}x" if other else "-"


def report(results: dict[str, dict[str, dict]], console: Console) -> None:
    table = Table(title="Long documents: test queries (ratios against MiniLM truncated / MaxP 256)")
    for column in (
        "task",
        "docs",
        "queries",
        "system",
        "nDCG@10 ± SE",
        "R@100",
        "s/doc",
        "peak MB",
        "nDCG / trunc",
        "nDCG / MaxP",
        "time / MaxP",
    ):
        table.add_column(column, justify="left" if column in ("task", "system") else "right")
    for task, found in results.items():
        trunc, maxp = found.get("MiniLM truncated"), found.get("MiniLM MaxP 256")
        for name, result in found.items():
            ndcg, se = mean_se(list(result["per_query"]["nDCG@10"].values()))
            recall = mean_se(list(result["per_query"]["R@100"].values()))[0]

            table.add_row(
                task,
                str(result["docs"]),
                str(len(result["per_query"]["nDCG@10"])),
                name,
                f"{ndcg:.4f} ± {se:.4f}",
                f"{recall:.4f}",
                f"{result['seconds_per_doc']:.3f}",
                f"{result['peak_mb']:.0f}",
                ratio(result, trunc),
                ratio(result, maxp),
                ratio(result, maxp, "time"),
            )
        table.add_section()
    console.print(table)


def plot(results: dict[str, dict[str, dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    collections = sorted({task.split("-")[0] for task in results})
    everyone = list(dict.fromkeys(name for found in results.values() for name in found))
    colors = {name: f"C{i}" for i, name in enumerate(everyone)}  # one colour per system everywhere
    colors["random order"] = "gray"
    modes = ("mix", "needle")
    figure, axes = plt.subplots(len(collections), 2, figsize=(10, 3.6 * len(collections)), squeeze=False)
    for row, collection in enumerate(collections):
        for column, mode in enumerate(modes):
            axis = axes[row][column]
            tasks = sorted(
                (int(t.rsplit("-", 1)[1]), t) for t in results if t.startswith(f"{collection}-{mode}-")
            )
            for name in everyone:
                points = [
                    (length, *mean_se(list(results[t][name]["per_query"]["nDCG@10"].values())))
                    for length, t in tasks
                    if name in results[t]
                ]
                if points:
                    xs, ys, ses = zip(*points, strict=True)
                    style = {"linestyle": "--"} if name == "random order" else {}
                    axis.errorbar(
                        xs, ys, yerr=ses, marker="o", capsize=3, label=name, color=colors[name], **style
                    )
            axis.set_xscale("log", base=2)
            axis.set_title(f"{collection} {mode}")
            axis.set_xlabel("document length (tokens)")
            axis.set_ylabel("nDCG@10 (test)")
            axis.grid(alpha=0.3)
    handles = {
        label: handle
        for axis in axes.flat
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True)
    }
    figure.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=8)
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--m2", type=Path, help="An M2 model folder (tessera train m2); omit to skip M2.")
    parser.add_argument(
        "--m2-distilled", type=Path, help="The stage-1 model (OUT.distilled), to show what stage 2 adds."
    )
    parser.add_argument("--collections", nargs="+", default=["cranfield", "cisi"])
    parser.add_argument("--modes", nargs="+", default=["mix", "needle"])
    parser.add_argument("--lengths", nargs="+", type=at_least(1), default=[2048, 8192, 32768])
    parser.add_argument("--systems", nargs="+", help="Subset of system names to run (and report).")
    parser.add_argument(
        "--saved-only", action="store_true", help="Report every saved result; build nothing new."
    )
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "benchmarks" / "long-documents")
    parser.add_argument("--plot", type=Path, help="Write nDCG@10 against length (PNG) here.")
    args = parser.parse_args()
    console = Console(width=200)
    chosen = systems(args.m2, args.m2_distilled)
    if args.systems:
        unknown = [name for name in args.systems if name not in chosen]
        if unknown:
            parser.error(f"unknown system {', '.join(unknown)} (known: {', '.join(chosen)})")
        chosen = {name: chosen[name] for name in args.systems}
    results: dict[str, dict[str, dict]] = {}
    for collection in args.collections:
        for mode in args.modes:
            for tokens in args.lengths:
                task = task_folder(collection, mode, tokens, args.work)
                results[task.name] = {"random order": random_order(task, args.work)}
                if args.saved_only:
                    results[task.name] |= saved_results(task, args.work)
                    continue
                results[task.name] |= {
                    name: measure(task, name, spec, chunk, args.work, console)
                    for name, (spec, chunk) in chosen.items()
                }
    report(results, console)
    if args.plot:
        plot(results, args.plot)
        console.print(f"plot written to {args.plot}")


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
