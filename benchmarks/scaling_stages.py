"""Job: the half of benchmarks/scaling.py that runs inside its stage subprocesses, and the shard
data both halves share (docs/scaling.md, section A). The driver (`scaling.py`) starts each stage
in a fresh process through its own command line, which hands the stage to `stage_main` here:

    python benchmarks/scaling.py _build --factory IVF4096,PQ48 --out X.faiss --json X.json SHARD...
    python benchmarks/scaling.py _search --index X.faiss --queries Q.npy --json Y.json \
        [--tune-sample 1000] [--rerank 0,100] [--nprobes 1,2,4] [--curve-only] SHARD...

Data: `mixture.clustered` (1,000-cluster mixture, 64-d latent mapped to 384-d,
unit-normalised), generated 100k rows at a time (corpus block i with seed 1,000,000 + i; queries
seed 1) and written as float32 shards of min(1M, size) rows (`shards.write_shard`) under
`.tessera-cache/bench/scaling/`; the first 1M rows of the 10M corpus are the 1M corpus.

- `_build`: `shards.trained_index` + `shards.fill` (the two halves of `build_from_shards`,
  called apart to time train and add), sampling this process's RSS every 0.2 s and reporting
  VmHWM / ru_maxrss at the end.
- `_search`: `tuning.tune` over a read-only view of the shards (`shard_view.ShardView`: slices are read,
  not mapped; sampled rows come from per-shard memmaps), then a sweep over nprobe against the
  exact top 10 of the queries, found by streaming every shard through `faiss.knn`. QPS is one
  batch of all queries with faiss on ONE thread, for the IVF index and for exact search alike
  (at <= 2M rows also an in-memory IndexFlatIP, to check the two agree). "+ rerank k'" searches
  the codes for k' candidates and re-scores them exactly with their float32 rows read from the
  disk shards (page cache), inside the timed region.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mixture import DIM, K, benchmark_queries, corpus_rows, recall, tuning_queries  # noqa: E402
from shard_view import ShardView, reranked, streamed_exact  # noqa: E402

SHARD_ROWS = 1_000_000
NPROBES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
ROOT = Path(os.environ.get("TESSERA_CACHE_DIR", ".tessera-cache")) / "bench" / "scaling"


# --------------------------------------------------------------------------- helpers


def rss_kib(field: str = "VmRSS") -> int:
    """`field` of the Linux kernel's /proc/self/status in KiB; 0 where there is none."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
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
    from tessera.indexing.shards import write_shard

    per = min(SHARD_ROWS, size)
    started = time.perf_counter()
    for number, path in enumerate(shard_files(size)):
        if path.exists() and path.stat().st_size == per * DIM * 4:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        block = corpus_rows(number * per, per)
        write_shard(path, block)
        del block
        console.log(f"wrote {path.name} ({per:,} rows)")
    return time.perf_counter() - started


def queries_for(count: int) -> np.ndarray:
    path = ROOT / f"queries-{count}.npy"
    if not path.exists():
        ROOT.mkdir(parents=True, exist_ok=True)
        np.save(path, benchmark_queries(count))
    return np.load(path)


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
        # Held-out queries of the workload, as `--tune-queries` would tune on (nothing to drop).
        wq = tuning_queries(args.tune_sample)
        w_rows = np.full(len(wq), -1)
        w_truth = tuning._drop_self(tuning.exact_neighbours(view, wq, K + 1), w_rows, K)
        if tuning.has_refine(index):  # an index kind that re-scores: tuned as --tune-queries tunes it
            w_params, out["tune_workload"] = tuning.tune(index, view, sample=args.tune_sample, queries=wq)
            space = faiss.ParameterSpace()
            for name, value in params.items():  # the curve below runs at the default tuning's k_factor
                space.set_index_parameter(index, name, value)

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
    # The same with the held-out workload queries instead ("tuned_rerank_workload").
    faiss.omp_set_num_threads(threads)
    for key, tune_q, own, tune_truth in (
        ("tuned_rerank", tq, rows, t_truth),
        ("tuned_rerank_workload", wq, w_rows, w_truth),
    ):
        tuned_rerank = {}
        for depth in [d for d in args.rerank if d]:
            sweep = []
            for nprobe in tuning.ladder(index, "nprobe"):
                ivf.nprobe = nprobe
                found = tuning._drop_self(reranked(index, view, tune_q, depth + 1, K + 1), own, K)
                pairs = zip(found, tune_truth, strict=True)
                got = float(np.mean([len(f & s) / len(s) for f, s in pairs if s]))
                sweep.append([nprobe, round(got, 4)])
                if got >= tuning.TARGET:
                    break
                if len(sweep) >= 3 and sweep[-1][1] - sweep[-3][1] < 0.001:
                    break  # flat for two steps: the re-ranking depth's ceiling (saves the exhaustive end)
            tuned_rerank[str(depth)] = sweep
        out[key] = tuned_rerank

    # QPS (one thread) and mixture-query recall at each tuned default.
    faiss.omp_set_num_threads(1)
    points = [("tune()", 0, params)] + [
        (f"rerank {d}{label}", int(d), {"nprobe": s[-1][0]})
        for key, label in (("tuned_rerank", ""), ("tuned_rerank_workload", ", tuned on queries"))
        for d, s in out[key].items()
        if s[-1][1] >= tuning.TARGET
    ]
    if "tune_workload" in out:
        points.insert(1, ("tune(), on queries", 0, w_params))
    defaults = []
    for name, depth, settings in points:
        if "nprobe" not in settings:
            continue
        for key, value in settings.items():
            faiss.ParameterSpace().set_index_parameter(index, key, value)
        nprobe = settings["nprobe"]
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
                "settings": settings,
                "rerank": depth,
                "recall": recall(labels, truth),
                "qps": len(queries) / best,
            }
        )
    out["defaults"] = defaults
    out["vmhwm_kib"] = rss_kib("VmHWM")
    Path(args.json).write_text(json.dumps(out))


def stage_main() -> None:
    """`python benchmarks/scaling.py _build|_search ...`: one stage, in this process."""
    from tessera.cli import at_least

    p = argparse.ArgumentParser()
    p.add_argument("stage")
    p.add_argument("files", nargs="+")
    p.add_argument("--factory")
    p.add_argument("--out")
    p.add_argument("--index")
    p.add_argument("--queries")
    p.add_argument("--json", required=True)
    p.add_argument("--tune-sample", type=at_least(1), default=1000)
    p.add_argument("--nprobes", type=lambda s: [int(x) for x in s.split(",")], default=list(NPROBES))
    p.add_argument("--curve-only", action="store_true", help="no tuning: the recall/QPS points only")
    p.add_argument("--rerank", type=lambda s: [int(x) for x in s.split(",")], default=[0])
    a = p.parse_args()
    (stage_build if a.stage == "_build" else stage_search)(a)
