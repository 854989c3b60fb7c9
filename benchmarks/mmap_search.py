"""Question: what does searching a memory-mapped faiss index (`Index.load(mmap=True)`, `tessera
search|serve --mmap`) cost against reading it into memory, and what does it save in opening
time and memory? (docs/scaling.md, "Searching a mapped index")

    python benchmarks/mmap_search.py [--rows 1000000] [--queries 1000] [--kinds KIND ...]
    python benchmarks/mmap_search.py --file INDEX.faiss --params '{"nprobe": 6}'   # built elsewhere

Data: the mixture of benchmarks/ann_1m.py (`mixture.corpus_rows`, queries seed 1). Each kind is
built as `tessera index --index KIND --tune-queries FILE` builds it (`build_faiss_index`, then
`tuning.tune` on 1,000 held-out workload queries, seed 2) and written with `FaissBackend.save`
under .tessera-cache/bench/mmap/ (kept: a rerun only measures). Each way of opening then runs in
a fresh process, so its memory is its own:
- `read`: `faiss_backend.read_faiss(path)` (the whole file read into memory),
- `mapped`: `read_faiss(path, mmap=True)` (faiss IO_FLAG_MMAP_IFC), what `Index.load(mmap=True)` does.
Before opening, the file's pages are dropped from the page cache (posix_fadvise DONTNEED), so a
mapped index's first pass over the queries reads from disk what it touches; then WARM more
passes, the fastest reported. Each pass is one batch of all queries on ONE faiss thread, as
ann_1m.py times. Memory is the process's growth in RssAnon (private memory: what the index
costs the process) and RssFile (mapped file pages: page cache the kernel can evict and other
processes share) from /proc/self/status. Flat = `faiss.knn` over the in-memory corpus, one
thread, timed before and after each kind's children (mean). `--file`: an index file built
elsewhere (benchmarks/scaling.py's at 10M), read against mapped only (no corpus, no flat)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mixture import benchmark_queries, corpus_rows, flat_baseline, recall, tuning_queries  # noqa: E402
from scaling_stages import rss_kib  # noqa: E402

WORK = Path(".tessera-cache/bench/mmap")
DEFAULT_KINDS = ("IVF4096,RaBitQfs,RFlat", "IVF4096_HNSW32,RaBitQfs,Refine(SQ8)")
MODES = ("read", "mapped")
WARM = 3  # passes after the first; the fastest is reported


def folder(kind: str, rows: int) -> Path:
    return WORK / f"{rows}-{kind.replace(',', '_').replace('(', '').replace(')', '')}"


def build(kind: str, corpus: np.ndarray, out: Path) -> dict:
    """Build, tune on workload queries and save `kind` as the product does; the tuned params."""
    from tessera.indexing.faiss_backend import FaissBackend, build_faiss_index
    from tessera.indexing.tuning import tune

    if (out / "params.json").is_file():
        return json.loads((out / "params.json").read_text())
    faiss.omp_set_num_threads(2)
    started = time.perf_counter()
    index = build_faiss_index(corpus, kind)
    tuned, record = tune(index, corpus, queries=tuning_queries(1000))
    out.mkdir(parents=True, exist_ok=True)
    FaissBackend(index, tuned).save(out)
    params = {"params": tuned, "build_s": time.perf_counter() - started, "tuned_recall": record.get("recall")}
    (out / "params.json").write_text(json.dumps(params))
    return params


def drop_cache(path: Path) -> None:
    """Ask the kernel to drop the file's clean cached pages (no privileges needed)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def child(path: Path, mode: str, params: dict, queries: int, labels_out: Path) -> None:
    """Fresh process: open the index file one way, search (first pass, then best of WARM);
    print one JSON line, save the labels."""
    from tessera.indexing.faiss_backend import FaissBackend, read_faiss

    faiss.omp_set_num_threads(1)
    batch = benchmark_queries(queries)
    drop_cache(path)
    base = {"anon": rss_kib("RssAnon"), "file": rss_kib("RssFile")}
    started = time.perf_counter()
    backend = FaissBackend(read_faiss(path, mmap=mode == "mapped"), params)
    report = {"mode": mode, "open_s": time.perf_counter() - started}
    report |= {"open_anon_mib": (rss_kib("RssAnon") - base["anon"]) / 1024}
    report |= {"open_file_mib": (rss_kib("RssFile") - base["file"]) / 1024}
    passes = []
    for _ in range(1 + WARM):
        started = time.perf_counter()
        _, labels = backend.search(batch, 10)
        passes.append(len(batch) / (time.perf_counter() - started))
    report |= {"first_qps": passes[0], "warm_qps": max(passes[1:])}
    report |= {"anon_mib": (rss_kib("RssAnon") - base["anon"]) / 1024}
    report |= {"file_mib": (rss_kib("RssFile") - base["file"]) / 1024}
    np.save(labels_out, labels)
    print(json.dumps(report))


def run_modes(path: Path, params: dict, queries: int, console) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Each way of opening `path`, in its own fresh process."""
    reports, labels = [], {}
    for mode in MODES:
        out = WORK / f"labels-{mode}.npy"
        command = [sys.executable, __file__, "--child", str(path), mode, json.dumps(params)]
        done = subprocess.run(
            [*command, "--queries", str(queries), "--labels", str(out)],
            capture_output=True,
            text=True,
            check=True,
        )
        reports.append(json.loads(done.stdout.strip().splitlines()[-1]))
        labels[mode] = np.load(out)
        console.log(reports[-1])
    return reports, labels


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    from tessera.cli import at_least

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=at_least(1), default=1_000_000)
    parser.add_argument("--queries", type=at_least(1), default=1000)
    parser.add_argument("--kinds", nargs="+", default=list(DEFAULT_KINDS))
    parser.add_argument("--file", type=Path, help="an index file built elsewhere: read vs mapped only")
    parser.add_argument("--params", default="{}", help="its search parameters, JSON (with --file)")
    parser.add_argument("--child", nargs=3, metavar=("FILE", "MODE", "PARAMS"), help=argparse.SUPPRESS)
    parser.add_argument("--labels", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(Path(args.child[0]), args.child[1], json.loads(args.child[2]), args.queries, args.labels)
    console = Console(width=200)
    WORK.mkdir(parents=True, exist_ok=True)
    table = Table(title=f"read vs mapped, {args.queries} queries, one thread; memory in MiB")
    columns = ("index", "rows", "file MiB", "params", "opened", "open s", "anon after open", "first pass QPS")
    columns += ("x flat", f"warm QPS (best of {WARM})", "x flat ", "anon", "file", "recall@10", "same labels")
    for column in columns:
        table.add_column(column, justify="right")
    if args.file:  # built elsewhere (e.g. benchmarks/scaling.py at 10M): no corpus, no flat here
        jobs = [(args.file.name, None, args.file, json.loads(args.params))]
    else:
        corpus, queries = corpus_rows(0, args.rows), benchmark_queries(args.queries)
        _, truth = flat_baseline(corpus, queries)
        jobs = []
        for kind in args.kinds:
            built = build(kind, corpus, folder(kind, args.rows))
            console.log(f"{kind}: {built}")
            jobs.append((kind, args.rows, folder(kind, args.rows) / "vectors.faiss", built["params"]))
    for kind, rows, path, params in jobs:
        before = flat_baseline(corpus, queries)[0] if rows else None
        reports, labels = run_modes(path, params, args.queries, console)
        flat = (before + flat_baseline(corpus, queries)[0]) / 2 if rows else None
        same = "yes" if np.array_equal(labels["read"], labels["mapped"]) else "NO"
        setting = " ".join(f"{name}={value}" for name, value in params.items())
        size = path.stat().st_size / 2**20
        if flat:
            console.log(f"{kind}: flat {flat:.1f} QPS")
        for r in reports:
            found = f"{recall(labels[r['mode']], truth):.3f}" if rows else "—"
            first, warm = (f"{r[q] / flat:.0f}x" if flat else "—" for q in ("first_qps", "warm_qps"))
            table.add_row(
                kind, f"{rows:,}" if rows else "—", f"{size:,.0f}", setting, r["mode"], f"{r['open_s']:.2f}",
                f"{r['open_anon_mib']:,.0f}", f"{r['first_qps']:,.0f}", first, f"{r['warm_qps']:,.0f}", warm,
                f"{r['anon_mib']:,.0f}", f"{r['file_mib']:,.0f}", found, same,
            )  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
