"""Question: does a streamed IVF-PQ build stay small and linear at 1M and 10M vectors, and does
its tuned default keep recall@10 >= 0.95 of exact search at >= 100x flat's QPS? (issue 15)

    python benchmarks/scaling.py [--sizes 1000000,10000000] [--part synthetic|ray|all]
        [--queries 1000] [--factory IVF4096,PQ48] [--rerank 0,100,200,400]

Part A (synthetic). Vectors come from `latency_1m.clustered` (the same 1,000-cluster mixture,
64-d latent mapped to 384-d, unit-normalised), generated 100k rows at a time and written as
1M-row float32 shards (`shards.write_shard`) under `.tessera-cache/bench/scaling/`; the first 1M
rows of the 10M corpus are the 1M corpus. Each size is then:

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
  float32 rows read from the disk shards (page cache), inside the timed region.

Part B (ray): docs/s of `distributed.build_index_ray` with 1 and 2 workers (one CPU and one
torch thread each, one shard per worker) against the single-process `builder.build_index`
(minilm, Flat, torch on every core) on a real collection: end to end, and the encode phase alone
(the slowest shard's encoding seconds, which each actor logs).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from tessera.indexing.shards import ShardRows

DIM = 384
SHARD_ROWS = 1_000_000
GEN_ROWS = 100_000  # rows per `clustered` call (one seed each)
CORPUS_SEED = 1_000_000  # corpus block i uses seed CORPUS_SEED + i; queries use seed 1
QUERY_SEED = 1
K = 10
NPROBES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
ROOT = Path(os.environ.get("TESSERA_CACHE_DIR", ".tessera-cache")) / "bench" / "scaling"
SCRIPT = Path(__file__).resolve()


# --------------------------------------------------------------------------- helpers


def rss_kib(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class RssSampler(threading.Thread):
    """Samples this process's RSS every `every` seconds; `phase` labels the samples."""

    def __init__(self, every: float = 0.2):
        super().__init__(daemon=True)
        self.every, self.samples, self.phase, self.started = every, [], "start", time.perf_counter()
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.samples.append((round(time.perf_counter() - self.started, 2), self.phase, rss_kib()))
            self.halt.wait(self.every)

    def stop(self) -> dict:
        self.halt.set()
        self.join()
        peaks: dict[str, int] = {}
        for _, phase, kib in self.samples:
            peaks[phase] = max(peaks.get(phase, 0), kib)
        return {"sampled_peak_kib": max(k for *_, k in self.samples), "phase_peak_kib": peaks}


def cpu_s() -> float:
    """CPU seconds (user + system, all threads) of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def shard_dir(rows_per_shard: int) -> Path:
    return ROOT / f"shards-{rows_per_shard}"


def shard_files(size: int) -> list[Path]:
    per = min(SHARD_ROWS, size)
    if size % per:
        raise SystemExit(f"size {size} must be a multiple of {per}")
    return [shard_dir(per) / f"shard_{i:03d}.f32" for i in range(size // per)]


def generate(size: int, console) -> float:
    """Write the shards of `size` rows that are missing; returns seconds spent."""
    sys.path.insert(0, str(SCRIPT.parent))
    from latency_1m import clustered  # the shared mixture; imported here (it pulls in torch)

    from tessera.indexing.shards import write_shard

    per = min(SHARD_ROWS, size)
    started = time.perf_counter()
    for number, path in enumerate(shard_files(size)):
        if path.exists() and path.stat().st_size == per * DIM * 4:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        block = np.empty((per, DIM), np.float32)
        first = number * per // GEN_ROWS
        for j, start in enumerate(range(0, per, GEN_ROWS)):
            rows = min(GEN_ROWS, per - start)
            block[start : start + rows] = clustered(rows, seed=CORPUS_SEED + first + j)
        write_shard(path, block)
        del block
        console.log(f"wrote {path.name} ({per:,} rows)")
    return time.perf_counter() - started


def queries_for(count: int) -> np.ndarray:
    path = ROOT / f"queries-{count}.npy"
    if not path.exists():
        sys.path.insert(0, str(SCRIPT.parent))
        from latency_1m import clustered

        ROOT.mkdir(parents=True, exist_ok=True)
        np.save(path, clustered(count, seed=QUERY_SEED))
    return np.load(path)


class ShardView(ShardRows):
    """`shards.ShardRows` (slices read with offsets, nothing stays mapped: what `tuning.tune`
    reads) plus `take`, which gathers rows by number from per-shard memmaps, touching only the
    pages of the rows asked for: the fast gather that re-ranking needs."""

    def __init__(self, files: list[Path], dim: int = DIM):
        super().__init__(files, dim)
        self.offsets = self.starts
        counts = np.diff(self.starts)
        self.maps = [
            np.memmap(f, dtype=np.float32, mode="r", shape=(int(c), dim))
            for f, c in zip(files, counts, strict=True)
        ]

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows by number (-1, faiss' "no result", gives row 0 of its shard: callers mask it)."""
        flat = np.maximum(rows.ravel(), 0)
        if len(self.maps) == 1:
            return np.asarray(self.maps[0])[flat].reshape(*rows.shape, self.dim)
        out = np.empty((len(flat), self.dim), np.float32)
        which = np.searchsorted(self.offsets, flat, side="right") - 1
        order = np.argsort(which, kind="stable")
        bounds = np.searchsorted(which[order], np.arange(len(self.maps) + 1))
        for i, mm in enumerate(self.maps):
            pick = order[bounds[i] : bounds[i + 1]]
            if len(pick):
                out[pick] = np.asarray(mm)[flat[pick] - self.offsets[i]]
        return out.reshape(*rows.shape, self.dim)


def streamed_exact(files: list[Path], queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top k of `queries` over every row of `files`, one chunk at a time."""
    import faiss

    from tessera.indexing.shards import chunks

    best_s = np.full((len(queries), 0), -np.inf, np.float32)
    best_l = np.zeros((len(queries), 0), np.int64)
    base = 0
    for block in chunks(files, DIM):
        sc, lab = faiss.knn(queries, block, min(k, len(block)), metric=faiss.METRIC_INNER_PRODUCT)
        sc, lab = np.concatenate([best_s, sc], 1), np.concatenate([best_l, lab + base], 1)
        order = np.argsort(-sc, axis=1, kind="stable")[:, :k]
        best_s, best_l = np.take_along_axis(sc, order, 1), np.take_along_axis(lab, order, 1)
        base += len(block)
    return best_s, best_l


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a[:K]) & set(b[:K])) / K for a, b in zip(found, truth, strict=True)]))


def reranked(index, view: ShardView, queries: np.ndarray, depth: int) -> np.ndarray:
    """Top K of the index's `depth` candidates, re-scored with their exact rows from disk."""
    _, cand = index.search(queries, depth)
    rows = view.take(cand)  # (q, depth, d)
    scores = np.matmul(rows, queries[:, :, None])[..., 0]
    scores[cand < 0] = -np.inf
    order = np.argsort(-scores, axis=1)[:, :K]
    return np.take_along_axis(cand, order, 1)


# --------------------------------------------------------------------------- subprocess stages


def stage_build(args) -> None:
    """Fresh process: train + fill an index from shards, write it, report times and memory."""
    import faiss

    from tessera.indexing import shards

    sampler = RssSampler()
    sampler.start()
    files = [Path(f) for f in args.files]
    timing: dict[str, float] = {}
    real_gather = shards.gather_sample

    def gather(*a, **kw):  # time the sample pass apart from the k-means it feeds
        t = time.perf_counter()
        out = real_gather(*a, **kw)
        timing["sample_s"] = time.perf_counter() - t
        return out

    shards.gather_sample = gather
    sampler.phase = "train"
    rss_before = rss_kib()
    t0, c0 = time.perf_counter(), cpu_s()
    index = shards.trained_index(files, DIM, args.factory)  # build_from_shards, first half
    t1, c1 = time.perf_counter(), cpu_s()
    sampler.phase = "add"
    shards.fill(index, files)  # build_from_shards, second half
    t2, c2 = time.perf_counter(), cpu_s()
    sampler.phase = "write"
    faiss.write_index(index, args.out)
    t3 = time.perf_counter()
    peaks = sampler.stop()
    result = {
        "rows": int(index.ntotal),
        "factory": args.factory,
        "threads": faiss.omp_get_max_threads(),
        "train_s": t1 - t0,
        "add_s": t2 - t1,
        "write_s": t3 - t2,
        "build_s": t2 - t0,
        "train_cpu_s": c1 - c0,
        "add_cpu_s": c2 - c1,
        "loadavg": os.getloadavg(),
        "index_bytes": os.path.getsize(args.out),
        "rss_at_start_kib": rss_before,
        "vmhwm_kib": rss_kib("VmHWM"),
        "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        **timing,
        **peaks,
        "rss_trace": sampler.samples[:: max(1, len(sampler.samples) // 400)],
    }
    Path(args.json).write_text(json.dumps(result))


def stage_search(args) -> None:
    """Fresh process: tune the built index, then sweep nprobe (and re-ranking) against exact."""
    import faiss

    from tessera.indexing import tuning

    files = [Path(f) for f in args.files]
    view = ShardView(files)
    threads = faiss.omp_get_max_threads()
    index = faiss.read_index(args.index)
    out: dict = {"rows": len(view), "threads_tune": threads}

    exact, memo = tuning.exact_neighbours, {}

    def remembered(vectors, queries, k):  # tune()'s exact answers, kept for the re-ranked tuning below
        key = (queries.tobytes(), k)
        if key not in memo:
            memo[key] = exact(vectors, queries, k)
        return memo[key]

    tuning.exact_neighbours = remembered
    if not args.curve_only:
        t = time.perf_counter()
        params, record = tuning.tune(index, view, sample=args.tune_sample)
        out["tune_s"] = time.perf_counter() - t
        out["tune"] = record
        out["rss_after_tune_kib"] = rss_kib()

        # The same held-out perturbed corpus queries tune() uses, for the re-ranked pipelines.
        rng = np.random.default_rng(0)
        rows = np.sort(rng.choice(len(view), size=min(len(view), args.tune_sample), replace=False))
        tq = tuning.perturbed(view[rows], rng)
        t_truth = tuning._drop_self(tuning.exact_neighbours(view, tq, K + 1), rows, K)

    queries = np.load(args.queries)
    out["queries"] = len(queries)
    faiss.omp_set_num_threads(1)  # every QPS below: one batch, one thread
    t = time.perf_counter()
    _, truth = streamed_exact(files, queries, K)
    flat_s = time.perf_counter() - t
    out["flat_stream_qps"] = len(queries) / flat_s
    if len(view) <= 2_000_000:
        flat = faiss.IndexFlatIP(DIM)
        for block in (view[s : s + 65_536] for s in range(0, len(view), 65_536)):
            flat.add(block)
        t = time.perf_counter()
        _, mem_truth = flat.search(queries, K)
        out["flat_memory_qps"] = len(queries) / (time.perf_counter() - t)
        out["flat_memory_agrees"] = recall(mem_truth, truth)
        del flat

    ivf = faiss.extract_index_ivf(index)
    curve = []
    for nprobe in [p for p in args.nprobes if p <= ivf.nlist]:
        ivf.nprobe = nprobe
        for depth in args.rerank:
            index.search(queries[:20], max(K, depth))  # warm-up
            best = None
            for _ in range(2):  # best of two (when quick): the cores are shared
                t = time.perf_counter()
                labels = reranked(index, view, queries, depth) if depth else index.search(queries, K)[1]
                took = time.perf_counter() - t
                best = took if best is None else min(best, took)
                if took > 3:
                    break
            curve.append(
                {
                    "nprobe": nprobe,
                    "rerank": depth,
                    "recall": recall(labels, truth),
                    "qps": len(queries) / best,
                }
            )
        print(json.dumps(curve[-len(args.rerank) :]), flush=True)
    out["curve"] = curve
    if args.curve_only:  # more points for a size already tuned (e.g. deeper re-ranking)
        Path(args.json).write_text(json.dumps(out))
        return

    # Tuned default of each re-ranked pipeline: tune()'s rule (smallest nprobe of its ladder
    # reaching recall@10 >= 0.95 on its perturbed corpus queries), applied to the re-ranked top 10.
    faiss.omp_set_num_threads(threads)
    tuned_rerank = {}
    for depth in [d for d in args.rerank if d]:
        sweep = []
        for nprobe in tuning.ladder(index, "nprobe"):
            ivf.nprobe = nprobe
            found = tuning._drop_self(labels_topk(index, view, tq, depth + 1), rows, K)
            got = float(np.mean([len(f & s) / len(s) for f, s in zip(found, t_truth, strict=True) if s]))
            sweep.append([nprobe, round(got, 4)])
            if got >= tuning.TARGET:
                break
            if len(sweep) >= 3 and sweep[-1][1] - sweep[-3][1] < 0.001:
                break  # flat for two steps: the re-ranking depth's ceiling (saves the exhaustive end)
        tuned_rerank[str(depth)] = sweep
    out["tuned_rerank"] = tuned_rerank

    # QPS (one thread) and mixture-query recall at each tuned default.
    faiss.omp_set_num_threads(1)
    points = [("tune()", 0, record.get("value"))] + [
        (f"rerank {d}", int(d), s[-1][0]) for d, s in tuned_rerank.items() if s[-1][1] >= tuning.TARGET
    ]
    defaults = []
    for name, depth, nprobe in points:
        if nprobe is None:
            continue
        ivf.nprobe = nprobe
        best = None
        for _ in range(2):
            t = time.perf_counter()
            labels = reranked(index, view, queries, depth) if depth else index.search(queries, K)[1]
            took = time.perf_counter() - t
            best = took if best is None else min(best, took)
        defaults.append(
            {
                "name": name,
                "nprobe": nprobe,
                "rerank": depth,
                "recall": recall(labels, truth),
                "qps": len(queries) / best,
            }
        )
    out["defaults"] = defaults
    out["vmhwm_kib"] = rss_kib("VmHWM")
    Path(args.json).write_text(json.dumps(out))


def labels_topk(index, view, queries, depth):
    """Re-ranked top K+1 (tune() drops the query's own document from K+1 answers)."""
    _, cand = index.search(queries, depth)
    rows = view.take(cand)
    scores = np.matmul(rows, queries[:, :, None])[..., 0]
    scores[cand < 0] = -np.inf
    order = np.argsort(-scores, axis=1)[:, : K + 1]
    return np.take_along_axis(cand, order, 1)


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
        "nprobe",
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
            sweep = s["tune"]["sweep"] if d["rerank"] == 0 else s["tuned_rerank"][str(d["rerank"])]
            ok = d["recall"] >= 0.95 and d["qps"] >= 100 * flat
            t.add_row(
                f"{size:,}",
                d["name"],
                str(d["nprobe"]),
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


class ShardTimes(logging.Handler):
    """Collects the (rows, seconds) each Ray actor logs per encoded shard (ray_encoding.py)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.shards: list[tuple[int, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("%s: %d rows in %.1f s"):
            self.shards.append((int(record.args[1]), float(record.args[2])))


def ray_part(args, console) -> None:
    try:
        from tessera.indexing.distributed import build_index_ray  # noqa: F401
    except ImportError as exc:
        console.log(f"part B skipped: {exc}")
        return
    import tempfile

    import torch
    from rich.table import Table

    from tessera.indexing.builder import build_index
    from tessera.indexing.distributed import build_index_ray

    corpus = Path(args.corpus)
    count = sum(1 for _ in corpus.open())
    t = Table(
        title=f"docs/s building a minilm Flat index of {corpus} ({count:,} docs; {os.cpu_count()} cores)"
    )
    for c in (
        "system",
        "workers",
        "torch threads each",
        "s",
        "docs/s",
        "x 1 worker",
        "encode phase docs/s",
        "x 1 worker ",
    ):
        t.add_column(c, justify="right")
    one = one_phase = None
    timing = ShardTimes()
    ray_log = logging.getLogger("tessera.indexing.ray_encoding")
    ray_log.addHandler(timing)
    ray_log.setLevel(logging.INFO)
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        runs = [("build_index (one process)", None)] + [("build_index_ray", w) for w in (1, 2)]
        for name, workers in runs:
            out = Path(tmp) / f"{name.split()[0]}-{workers}"
            timing.shards.clear()
            started = time.perf_counter()
            if workers is None:
                build_index(corpus, out, encoder="minilm", factory="Flat", show_progress=False)
            else:
                # one shard per worker, so the encode phase is the slowest shard's time
                build_index_ray(
                    corpus,
                    out,
                    encoder="minilm",
                    factory="Flat",
                    workers=workers,
                    shards=workers,
                    show_progress=False,
                )
            secs = time.perf_counter() - started
            phase = count / max(s for _, s in timing.shards) if timing.shards else None
            if workers == 1:
                one, one_phase = secs, phase
            t.add_row(
                name,
                str(workers or "-"),
                str(torch.get_num_threads()) if workers is None else "1",
                f"{secs:.1f}",
                f"{count / secs:.1f}",
                f"{one / secs:.2f}x" if one and workers else "-",
                f"{phase:.1f}" if phase else "-",
                f"{phase / one_phase:.2f}x" if phase and one_phase else "-",
            )
            console.log(f"{name} {workers}: {secs:.1f} s; shards (rows, s): {timing.shards}")
    ray_log.removeHandler(timing)
    console.print(t)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("_build", "_search"):
        p = argparse.ArgumentParser()
        p.add_argument("stage")
        p.add_argument("files", nargs="+")
        p.add_argument("--factory")
        p.add_argument("--out")
        p.add_argument("--index")
        p.add_argument("--queries")
        p.add_argument("--json", required=True)
        p.add_argument("--tune-sample", type=int, default=1000)
        p.add_argument("--nprobes", type=lambda s: [int(x) for x in s.split(",")], default=list(NPROBES))
        p.add_argument("--curve-only", action="store_true", help="no tuning: the recall/QPS points only")
        p.add_argument("--rerank", type=lambda s: [int(x) for x in s.split(",")], default=[0])
        a = p.parse_args()
        (stage_build if a.stage == "_build" else stage_search)(a)
        return
    from rich.console import Console

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1_000_000, 10_000_000]
    )
    parser.add_argument("--part", choices=["synthetic", "ray", "all"], default="synthetic")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--tune-sample", type=int, default=1000)
    parser.add_argument(
        "--nprobes", type=lambda s: [int(x) for x in s.split(",")], default=list(NPROBES), help="curve points"
    )
    parser.add_argument("--factory", default="IVF4096,PQ48")
    parser.add_argument("--rerank", type=lambda s: [int(x) for x in s.split(",")], default=[0, 100, 200, 400])
    parser.add_argument("--reuse", action="store_true", help="reuse a size's stage results already on disk")
    parser.add_argument("--plot", default=str(SCRIPT.parent.parent / "docs" / "scaling.png"))
    parser.add_argument(
        "--corpus",
        default=os.path.join(os.environ.get("TESSERA_DATA_DIR", "data"), "cisi-beir", "corpus.jsonl"),
    )
    args = parser.parse_args()
    console = Console(width=160, record=True)
    if args.part in ("synthetic", "all"):
        results = synthetic(args, console)
        report(results, args, console)
    if args.part in ("ray", "all"):
        ray_part(args, console)
    ROOT.mkdir(parents=True, exist_ok=True)
    (ROOT.parent / "scaling.txt").write_text(console.export_text())


if __name__ == "__main__":
    main()
