"""Question: how do encode time and peak memory per document grow with document length (512 to
32,768 tokens) for the attention-free M2-BERT encoder, against a Transformer encoder of the same size?

    python benchmarks/long_context_scaling.py [--lengths 512 1024 ...] [--fft-cache on|off]
        [--plot docs/long_context_scaling.png] [--out scaling.json]

Models (CPU, float32, `torch.set_num_threads(2)`):
- M2: `build_sentence_transformer(M2Config(), max_seq_length=L)` (hidden 384, 6 layers), the whole
  sentence-transformers forward (M2 -> mean pooling -> normalize) on an all-ones attention mask.
- Transformer: a `transformers.BertModel` with MiniLM's shape (hidden 384, 6 layers, 12 heads,
  intermediate 1536) and `max_position_embeddings = L`, followed by a mean over tokens; random
  init (only cost is measured, and cost does not depend on the weights). Default attention
  ("sdpa"), and "eager", which materialises the 12 x L x L scores of every layer.
Each (model, length) runs in a fresh subprocess with a timeout and an address-space ceiling
(RLIMIT_AS), on one document of exactly L random token ids (no padding), under
`torch.inference_mode()`: one warm-up forward, then the median of 3 timed forwards (1 when the
warm-up took over 20 s). Peak memory is `ru_maxrss` of the subprocess minus its RSS after the
model is built (the encode's own peak; the high-water mark is reset after loading where the
kernel allows, so loading transients do not count), and the subprocess's total peak RSS.
M2's filter FFTs are cached per mixer (`fft_cache_bytes`, 256 MiB by default): the warm-up is
the first call at that length, so it computes the filters' FFTs and, with the cache on, stores
them, and the timed forwards reuse them; its time is shown separately ("1st call") and the
cache it leaves behind counts in the peak. `--fft-cache off` sets `fft_cache_bytes = 0`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

LENGTHS = [512, 1024, 2048, 4096, 8192, 16384, 32768]
MODELS = ["m2", "sdpa", "eager"]
LABELS = {"m2": "M2-BERT", "sdpa": "Transformer (sdpa)", "eager": "Transformer (eager)"}
HIDDEN, LAYERS, HEADS, INTERMEDIATE, VOCAB = 384, 6, 12, 1536, 30522
THREADS = 2
SLOW_FORWARD_S = 20.0  # a warm-up slower than this: one timed forward instead of three
MB = 2**20


def attention_scores_bytes(length: int) -> int:
    """Eager attention's score matrix for one layer: heads x L x L float32 (an estimate: the
    softmax output is a second tensor of the same size, and sdpa's fused kernel holds neither)."""
    return HEADS * length * length * 4


# -- worker: one (model, length) in its own process ----------------------------------------------
def _rss_bytes() -> int:
    return psutil.Process().memory_info().rss


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kB


def _reset_peak() -> bool:
    """Reset the high-water RSS to the current RSS (Linux >= 4.0), so ru_maxrss covers what follows."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def _emit(**event: object) -> None:
    print(json.dumps(event), flush=True)


def _build(model: str, length: int, fft_cache: str):
    """(forward(input_ids) -> pooled vector, M2 mixers or [])."""
    import torch

    if model == "m2":
        from tessera.models.m2 import M2Config, MonarchMixerSequenceMixer, build_sentence_transformer

        encoder = build_sentence_transformer(M2Config(), max_seq_length=length).eval()
        mixers = [m for m in encoder.modules() if isinstance(m, MonarchMixerSequenceMixer)]
        if fft_cache == "off":
            for mixer in mixers:
                mixer.fft_cache_bytes = 0

        def forward(ids: torch.Tensor) -> torch.Tensor:
            return encoder({"input_ids": ids, "attention_mask": torch.ones_like(ids)})["sentence_embedding"]

        return forward, mixers
    from transformers import BertConfig, BertModel

    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=INTERMEDIATE,
        max_position_embeddings=length,
        attn_implementation=model,
    )
    bert = BertModel(config, add_pooling_layer=False).eval()
    if bert.config._attn_implementation != model:
        raise RuntimeError(f"asked for {model} attention, got {bert.config._attn_implementation}")

    def forward(ids: torch.Tensor) -> torch.Tensor:
        return bert(input_ids=ids).last_hidden_state.mean(1)

    return forward, []


def worker(model: str, length: int, fft_cache: str, mem_limit_gb: float) -> None:
    limit = int(mem_limit_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import gc

    import torch

    torch.set_num_threads(THREADS)
    start = time.perf_counter()
    forward, mixers = _build(model, length, fft_cache)
    ids = torch.randint(1000, VOCAB, (1, length), generator=torch.Generator().manual_seed(length))
    gc.collect()
    load_peak = _maxrss_bytes()
    rss_loaded = _rss_bytes()
    reset = _reset_peak()
    _emit(event="loaded", load_s=time.perf_counter() - start, rss_loaded=rss_loaded, peak_reset=reset)
    try:
        with torch.inference_mode():
            start = time.perf_counter()
            forward(ids)
            first = time.perf_counter() - start
            cache = sum(t.numel() * t.element_size() for m in mixers for t in m._fft_cache.values())
            _emit(event="warmup", first_s=first, fft_cache_bytes_held=cache)
            times = []
            for _ in range(1 if first > SLOW_FORWARD_S else 3):
                start = time.perf_counter()
                forward(ids)
                times.append(time.perf_counter() - start)
    except (MemoryError, RuntimeError) as error:
        if isinstance(error, MemoryError) or "alloc" in str(error).lower():
            _emit(event="oom", error=str(error)[:200])
            return
        raise
    peak = _maxrss_bytes()
    _emit(
        event="done",
        s_per_doc=statistics.median(times),
        times=times,
        peak_bytes=peak - rss_loaded,
        total_peak_bytes=max(peak, load_peak),
    )


# -- driver ----------------------------------------------------------------------------------
def measure(model: str, length: int, fft_cache: str, timeout: float, mem_limit_gb: float) -> dict:
    """Run one worker; its events merged into one dict with a `status`."""
    command = [sys.executable, __file__, "--worker", model, str(length), fft_cache, str(mem_limit_gb)]
    env = {**os.environ, "OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS)}
    result: dict = {"model": model, "length": length}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
        stdout, stderr, code = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as expired:
        stdout, stderr, code = expired.stdout or "", expired.stderr or "", None
        if isinstance(stdout, bytes):
            stdout, stderr = stdout.decode(), (stderr or b"").decode()
    events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    for event in events:
        result.update({k: v for k, v in event.items() if k != "event"})
    last = events[-1]["event"] if events else None
    if code is None:
        result["status"] = "timeout"
    elif last == "done":
        result["status"] = "ok"
    elif last == "oom" or code == -9 or any(s in stderr for s in ("bad_alloc", "allocate", "MemoryError")):
        result["status"] = "OOM"
    else:
        result["status"] = "error"
        result["error"] = stderr.strip().splitlines()[-1:] or [f"exit {code}"]
    return result


def fmt_s(row: dict | None) -> str:
    if row is None:
        return "-"
    if row["status"] != "ok":
        return row["status"]
    return f"{row['s_per_doc']:.2f}"


def fmt_mb(row: dict | None) -> str:
    if row is None or row["status"] != "ok":
        return "-" if row is None else row["status"]
    return f"{row['peak_bytes'] / MB:,.0f} ({row['total_peak_bytes'] / MB:,.0f})"


def ratio(a: dict | None, b: dict | None, key: str) -> str:
    if not a or not b or a["status"] != "ok" or b["status"] != "ok" or b[key] <= 0:
        return "-"
    return f"{a[key] / b[key]:.1f}x"


def plot(results: dict[str, dict[int, dict]], lengths: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(13, 5))
    panels = [("s_per_doc", 1.0, "seconds per document"), ("peak_bytes", MB, "peak encode memory (MB)")]
    for axis, (key, unit, ylabel) in zip(axes, panels, strict=True):
        anchor, values = None, []
        for model, marker in zip(MODELS, "osD", strict=True):
            points = sorted(
                (length, max(row[key] / unit, 1e-3))
                for length, row in results.get(model, {}).items()
                if row["status"] == "ok"
            )
            if not points:
                continue
            anchor = anchor or points[0]
            values += [value for _, value in points]
            axis.plot(*zip(*points, strict=True), marker=marker, label=LABELS[model])
        if anchor:
            xs = [min(lengths), max(lengths)]
            for slope, color in ((1, "grey"), (2, "black")):
                ys = [anchor[1] * (x / anchor[0]) ** slope for x in xs]
                axis.plot(
                    xs, ys, linestyle="--", color=color, linewidth=1, label=f"slope {slope} (∝ L^{slope})"
                )
        axis.set_xscale("log", base=2)
        axis.set_xticks(lengths, [f"{length:,}" for length in lengths])
        axis.set_yscale("log")
        if values:  # the references would otherwise stretch the axis far past the data
            axis.set_ylim(min(values) / 1.5, max(values) * 1.5)
        axis.set_xlabel("document length (tokens, log)")
        axis.set_ylabel(f"{ylabel} (log)")
        axis.grid(True, which="both", linewidth=0.3)
        axis.legend(fontsize=8)
    axes[0].set_title("Encode time per document (batch 1, CPU, 2 threads)")
    axes[1].set_title("Peak RSS of the encode above the loaded model")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _, _, model, length, fft_cache, mem_limit_gb = sys.argv
        worker(model, int(length), fft_cache, float(mem_limit_gb))
        return
    from tessera.cli import at_least

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lengths", nargs="+", type=at_least(1), default=LENGTHS)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=MODELS)
    parser.add_argument("--fft-cache", choices=["on", "off"], default="on", help="M2 filter-FFT cache.")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per (model, length) run")
    parser.add_argument("--mem-limit-gb", type=float, default=16.0, help="RLIMIT_AS of each run")
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None, help="raw numbers as JSON")
    args = parser.parse_args()
    from rich.console import Console
    from rich.table import Table

    console = Console(width=200)
    lengths = sorted(args.lengths)
    results: dict[str, dict[int, dict]] = {model: {} for model in args.models}
    for model in args.models:
        failed = None
        for length in lengths:
            if failed:  # longer is slower and larger: do not spend another timeout on it
                row = {"model": model, "length": length, "status": f"{failed['status']} (not run)"}
            else:
                row = measure(model, length, args.fft_cache, args.timeout, args.mem_limit_gb)
                if row["status"] != "ok":
                    failed = row
            results[model][length] = row
            extra = (
                f"{row['s_per_doc']:.2f} s, {row['peak_bytes'] / MB:,.0f} MB" if row["status"] == "ok" else ""
            )
            console.log(f"{LABELS[model]} L={length}: {row['status']} {extra}")

    m2, sdpa, eager = (results.get(model, {}) for model in MODELS)
    title = (
        f"One document of L tokens, batch 1, CPU float32, {THREADS} threads; median of 3 forwards after "
        f"a warm-up (1 if > {SLOW_FORWARD_S:.0f} s); M2 filter-FFT cache {args.fft_cache}; peak MB = "
        "ru_maxrss - RSS after loading (process total in brackets); Transformer random init"
    )
    table = Table(title=title)
    columns = [
        "length",
        "M2 s/doc",
        "M2 1st call s",
        "M2 peak MB",
        "Transformer(sdpa) s/doc",
        "peak MB",
        "eager s/doc",
        "peak MB",
        "sdpa/M2 time",
        "sdpa/M2 memory",
    ]
    for column in columns:
        table.add_column(column, justify="right")
    for length in lengths:
        first = m2.get(length, {}).get("first_s")
        table.add_row(
            f"{length:,}",
            fmt_s(m2.get(length)),
            "-" if first is None else f"{first:.2f}",
            fmt_mb(m2.get(length)),
            fmt_s(sdpa.get(length)),
            fmt_mb(sdpa.get(length)),
            fmt_s(eager.get(length)),
            fmt_mb(eager.get(length)),
            ratio(sdpa.get(length), m2.get(length), "s_per_doc"),
            ratio(sdpa.get(length), m2.get(length), "peak_bytes"),
        )
    console.print(table)

    for model in ("sdpa", "eager"):
        for length, row in results.get(model, {}).items():
            if row["status"] != "ok":
                estimate = attention_scores_bytes(length)
                console.print(
                    f"{LABELS[model]} L={length:,}: {row['status']}; attention scores (ESTIMATE, "
                    f"{HEADS} heads x L^2 x 4 B): {estimate / 2**30:,.2f} GiB per layer"
                )
    cached = [
        (length, row["fft_cache_bytes_held"]) for length, row in m2.items() if "fft_cache_bytes_held" in row
    ]
    if cached:
        held = ", ".join(f"{length:,}: {size / MB:,.0f} MB" for length, size in cached)
        console.print(f"M2 warm-up (first call) left this much filter-FFT cache held, all 6 mixers: {held}")
    a, b = m2.get(8192), m2.get(32768)
    if a and b and a["status"] == b["status"] == "ok":
        memory = b["peak_bytes"] / a["peak_bytes"]
        total = b["total_peak_bytes"] / a["total_peak_bytes"]
        console.print(
            f"M2 growth 8k -> 32k (4x the tokens): peak encode memory x{memory:.2f} "
            f"({'meets' if memory <= 4.5 else 'misses'} the <= 4.5x goal), process total x{total:.2f}, "
            f"time x{b['s_per_doc'] / a['s_per_doc']:.2f}"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        raw = {"fft_cache": args.fft_cache, "threads": THREADS, "results": results}
        args.out.write_text(json.dumps(raw, indent=1))
        console.print(f"raw numbers: {args.out}")
    if args.plot:
        plot(results, lengths, args.plot)
        console.print(f"plot: {args.plot}")


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
