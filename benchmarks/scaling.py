"""Question: does a streamed IVF-PQ build stay small and linear at 1M and 10M vectors, and does
its tuned default keep recall@10 >= 0.95 of exact search at >= 100x flat's QPS? (issue 15;
docs/scaling.md, section A)

    python benchmarks/scaling.py [--sizes 1000000,10000000] [--queries 1000] [--tune-sample 1000]
        [--factory IVF4096,PQ48] [--rerank 0,100,200,400] [--nprobes 1,2,...] [--reuse]
        [--plot docs/scaling.png]

Vectors come from `mixture.clustered` (the same 1,000-cluster mixture, 64-d latent mapped to
384-d, unit-normalised), generated 100k rows at a time and written as 1M-row float32 shards
(`shards.write_shard`) under `.tessera-cache/bench/scaling/`; the first 1M rows of the 10M
corpus are the 1M corpus. Each size is then:

- built by `shards.trained_index` + `shards.fill` (the two halves of `build_from_shards`, called
  apart to time train and add) in a fresh subprocess that samples its own RSS every 0.2 s and
  reports VmHWM / ru_maxrss at the end;
- tuned in another subprocess by `tuning.tune` over a read-only view of the shards (slices are
  read, not mapped; sampled rows come from per-shard memmaps);
- swept over nprobe against the exact top 10 of `--queries` queries from the same mixture (another
  seed), found by streaming every shard through `faiss.knn`. QPS is one batch of all queries
  with faiss on ONE thread, for the IVF index and for exact search alike: flat QPS is the time
  of that streaming exact scan (at 1M also an in-memory IndexFlatIP, to check the two agree).
  "+ rerank k'" searches the codes for k' candidates and re-scores them exactly with their
  float32 rows read from the disk shards (page cache), inside the timed region;
- given a default nprobe per re-ranked pipeline by tune()'s rule twice: on tune()'s perturbed
  corpus queries, and on `--tune-sample` held-out queries of the workload (`mixture.
  tuning_queries`, never measured), as `tessera index --tune-queries` tunes.

This file is the driver (shards, one subprocess per stage, tables, plot). The stages, which the
driver starts as `python benchmarks/scaling.py _build|_search ...`, and the shard plumbing live
in `scaling_stages.py`. Ray-distributed indexing throughput: `ray_scaling.py`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scaling_stages import NPROBES, ROOT, generate, queries_for, shard_files, stage_main  # noqa: E402

SCRIPT = Path(__file__).resolve()


# --------------------------------------------------------------------------- driver


def run_stage(console, argv: list[str], log: Path) -> None:
    command = [sys.executable, str(SCRIPT), *argv]
    console.log("$ " + " ".join(command[1:]))
    with log.open("w") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if done.returncode:
        raise SystemExit(f"stage failed ({done.returncode}); see {log}")


def synthetic(args, console) -> dict:
    results = {}
    for size in args.sizes:
        files = shard_files(size)
        gen_s = generate(size, console)
        work = ROOT / f"n{size}"
        work.mkdir(parents=True, exist_ok=True)
        tag = args.factory.replace(",", "_")
        index_path, build_json = work / f"{tag}.faiss", work / f"{tag}.build.json"
        if not (build_json.exists() and args.reuse):
            run_stage(
                console,
                [
                    "_build",
                    "--factory",
                    args.factory,
                    "--out",
                    str(index_path),
                    "--json",
                    str(build_json),
                    *map(str, files),
                ],
                work / "build.log",
            )
        build = json.loads(build_json.read_text())
        qpath = ROOT / f"queries-{args.queries}.npy"
        queries_for(args.queries)
        search_json = work / f"{tag}.search-q{args.queries}.json"
        if args.reuse and not search_json.exists():  # a size measured with another query count
            search_json = next(iter(sorted(work.glob(f"{tag}.search-q*.json"))), search_json)
        if not (search_json.exists() and args.reuse):
            run_stage(
                console,
                [
                    "_search",
                    "--index",
                    str(index_path),
                    "--queries",
                    str(qpath),
                    "--json",
                    str(search_json),
                    "--tune-sample",
                    str(args.tune_sample),
                    "--rerank",
                    ",".join(map(str, args.rerank)),
                    "--nprobes",
                    ",".join(map(str, args.nprobes)),
                    *map(str, files),
                ],
                work / "search.log",
            )
        search = json.loads(search_json.read_text())
        results[size] = {"gen_s": gen_s, "build": build, "search": search}
        console.log(f"{size:,}: build {build['build_s']:.0f} s, peak {build['vmhwm_kib'] / 2**20:.2f} GiB")
    return results


def report(results: dict, args, console) -> None:
    from rich.table import Table

    sizes = sorted(results)
    base = sizes[0]
    gib = 2**20
    t = Table(
        title=f"Streamed build of {args.factory} from 1M-row float32 shards (fresh process each; "
        f"faiss threads = {results[base]['build']['threads']}; shared 2-core machine)"
    )
    for c in (
        "rows",
        "sample pass s",
        "train s",
        "add s",
        "build s",
        f"x {base:,}",
        "add x",
        "CPU s train / add",
        "CPU x",
        "peak RSS GiB (VmHWM)",
        "sampled peak train/add",
        "index MB",
        "goal RSS < 2 GiB",
    ):
        t.add_column(c, justify="right")
    b0 = results[base]["build"]

    def cpu(b):
        return b.get("train_cpu_s", float("nan")) + b.get("add_cpu_s", float("nan"))

    for size in sizes:
        b = results[size]["build"]
        ph = b["phase_peak_kib"]
        t.add_row(
            f"{size:,}",
            f"{b.get('sample_s', 0):.1f}",
            f"{b['train_s']:.1f}",
            f"{b['add_s']:.1f}",
            f"{b['build_s']:.1f}",
            f"{b['build_s'] / b0['build_s']:.2f}x",
            f"{b['add_s'] / b0['add_s']:.2f}x",
            f"{b.get('train_cpu_s', float('nan')):.0f} / {b.get('add_cpu_s', float('nan')):.0f}",
            f"{cpu(b) / cpu(b0):.2f}x",
            f"{b['vmhwm_kib'] / gib:.2f}",
            f"{ph.get('train', 0) / gib:.2f} / {ph.get('add', 0) / gib:.2f}",
            f"{b['index_bytes'] / 1e6:.0f}",
            "met" if b["vmhwm_kib"] < 2 * gib else "NOT met",
        )
    console.print(t)

    t = Table(title="Tuning (tuning.tune over a view of the shards; perturbed held-out corpus queries)")
    for c in ("rows", "queries", "tuned nprobe", "recall@10", "target met", "ceiling", "tune s", "sweep"):
        t.add_column(c, justify="right")
    for size in sizes:
        r = results[size]["search"]["tune"]
        t.add_row(
            f"{size:,}",
            str(r["queries"]),
            str(r["value"]),
            f"{r['recall']:.3f}",
            str(r["target_met"]),
            str(r.get("ceiling", "-")),
            f"{results[size]['search']['tune_s']:.0f}",
            " ".join(f"{v}:{x:.2f}" for v, x in r["sweep"]),
        )
    console.print(t)

    for size in sizes:
        s = results[size]["search"]
        flat = s["flat_stream_qps"]
        t = Table(
            title=f"{size:,} rows: recall@10 vs exact and QPS "
            f"({s.get('queries', args.queries)} mixture queries, one batch, "
            f"1 faiss thread); flat = streamed exact scan {flat:.1f} QPS"
            + (f", in-memory IndexFlatIP {s['flat_memory_qps']:.1f} QPS" if "flat_memory_qps" in s else "")
        )
        t.add_column("nprobe", justify="right")
        for depth in args.rerank:
            name = "codes only" if not depth else f"+ rerank {depth}"
            t.add_column(f"{name} recall", justify="right")
            t.add_column(f"{name} QPS (x flat)", justify="right")
        rows: dict[int, list[str]] = {}
        for p in s["curve"]:
            rows.setdefault(p["nprobe"], []).extend(
                [f"{p['recall']:.3f}", f"{p['qps']:,.0f} ({p['qps'] / flat:,.0f}x)"]
            )
        for nprobe, cells in rows.items():
            t.add_row(str(nprobe), *cells)
        console.print(t)

    t = Table(
        title="Tuned defaults on the mixture queries "
        "(QPS: one batch, 1 thread; goal recall >= 0.95 at >= 100x flat)"
    )
    for c in (
        "rows",
        "pipeline",
        "setting",
        "tuning sweep (nprobe:recall)",
        "recall@10",
        "QPS",
        "x flat",
        "goal",
    ):
        t.add_column(c, justify="right")
    for size in sizes:
        s = results[size]["search"]
        flat = s["flat_stream_qps"]
        for d in s["defaults"]:
            on_queries = d["name"].endswith("on queries")
            if d["rerank"] == 0:
                sweep = s["tune_workload" if on_queries else "tune"]["sweep"]
            else:
                sweep = s["tuned_rerank_workload" if on_queries else "tuned_rerank"][str(d["rerank"])]
            ok = d["recall"] >= 0.95 and d["qps"] >= 100 * flat
            t.add_row(
                f"{size:,}",
                d["name"],
                " ".join(f"{k}={v}" for k, v in d.get("settings", {"nprobe": d["nprobe"]}).items()),
                " ".join(f"{v}:{x:.2f}" for v, x in sweep[-4:]),
                f"{d['recall']:.3f}",
                f"{d['qps']:,.0f}",
                f"{d['qps'] / flat:,.0f}x",
                "met" if ok else "NOT met",
            )
    console.print(t)
    plot(results, args)


def plot(results: dict, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    colours = ["tab:blue", "tab:red", "tab:green", "tab:purple"]
    styles = ["-", "--", ":", "-.", (0, (5, 1, 1, 1, 1, 1))]
    for ci, size in enumerate(sorted(results)):
        s = results[size]["search"]
        for si, depth in enumerate(args.rerank):
            pts = [p for p in s["curve"] if p["rerank"] == depth]
            if not pts:
                continue
            label = f"{size / 1e6:g}M " + ("codes only" if not depth else f"+ rerank {depth}")
            ax.plot(
                [p["qps"] for p in pts],
                [p["recall"] for p in pts],
                linestyle=styles[si % len(styles)],
                marker="o",
                ms=3,
                color=colours[ci % 4],
                label=label,
            )
            for p in pts[:: max(1, len(pts) // 5)] if depth == args.rerank[-1] else []:
                ax.annotate(str(p["nprobe"]), (p["qps"], p["recall"]), fontsize=7, color=colours[ci % 4])
        flat = s["flat_stream_qps"]
        ax.axvline(flat, color=colours[ci % 4], lw=0.8, alpha=0.6)
        ax.axvline(100 * flat, color=colours[ci % 4], lw=0.8, ls="--", alpha=0.6)
        ax.text(
            flat, 0.02, f" flat {size / 1e6:g}M", rotation=90, fontsize=7, color=colours[ci % 4], va="bottom"
        )
        ax.text(
            100 * flat,
            0.02,
            f" 100x flat {size / 1e6:g}M",
            rotation=90,
            fontsize=7,
            color=colours[ci % 4],
            va="bottom",
        )
    ax.axhline(0.95, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("queries/s (one batch, 1 faiss thread), log scale")
    ax.set_ylabel("recall@10 vs exact search")
    ax.set_title(f"{args.factory} from disk shards: recall@10 vs QPS over nprobe (labels)")
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 0.08))
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(args.plot, dpi=120)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("_build", "_search"):  # a stage (scaling_stages.py)
        stage_main()
        return
    from rich.console import Console

    from tessera.cli import at_least

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1_000_000, 10_000_000]
    )
    parser.add_argument("--queries", type=at_least(1), default=1000)
    parser.add_argument("--tune-sample", type=at_least(1), default=1000)
    parser.add_argument(
        "--nprobes", type=lambda s: [int(x) for x in s.split(",")], default=list(NPROBES), help="curve points"
    )
    parser.add_argument("--factory", default="IVF4096,PQ48")
    parser.add_argument("--rerank", type=lambda s: [int(x) for x in s.split(",")], default=[0, 100, 200, 400])
    parser.add_argument("--reuse", action="store_true", help="reuse a size's stage results already on disk")
    parser.add_argument("--plot", default=str(SCRIPT.parent.parent / "docs" / "scaling.png"))
    args = parser.parse_args()
    console = Console(width=160, record=True)
    results = synthetic(args, console)
    report(results, args, console)
    ROOT.mkdir(parents=True, exist_ok=True)
    (ROOT.parent / "scaling.txt").write_text(console.export_text())


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
