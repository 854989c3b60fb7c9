"""Question: where does `@bf16` spend its time on short texts, and would transformers' eager
attention be faster than SDPA under it?

    python benchmarks/bf16_profile.py [--collection glasgow/lisa] [--docs 2000]

One process, the bundled MiniLM with `@bf16`'s weights and autocast (`runtimes.apply.bf16_weights`):
docs/s of SDPA and eager attention taking turns for two rounds over the same texts, each with
its lowest per-text cosine to fp32 (the ratio column is eager / SDPA); then the torch profiler's
share of self CPU time per operator over 600 of the texts under SDPA.
"""

from __future__ import annotations

import argparse
import time

import torch
from rich.console import Console
from rich.table import Table
from sentence_transformers import SentenceTransformer

from tessera.cli import at_least
from tessera.data.corpus import open_corpus
from tessera.models.bundled import bundled_path
from tessera.models.runtimes.apply import bf16_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collection", default="glasgow/lisa")
    parser.add_argument("--docs", type=at_least(1), default=2000)
    args = parser.parse_args()
    console = Console()
    texts = [doc.contents for doc in open_corpus(args.collection)][: args.docs]
    path = str(bundled_path("minilm"))
    reference = SentenceTransformer(path, device="cpu").encode(texts, normalize_embeddings=True)
    models = {}
    for attention in ("sdpa", "eager"):
        model = SentenceTransformer(path, device="cpu", model_kwargs={"attn_implementation": attention})
        context = bf16_weights(model)
        with context():
            model.encode(texts[:64])
        models[attention] = (model, context)
    speed: dict[str, list[float]] = {name: [] for name in models}
    lowest: dict[str, float] = {}
    for _ in range(2):
        for name, (model, context) in models.items():
            with context():
                start = time.perf_counter()
                vectors = model.encode(texts, batch_size=32, normalize_embeddings=True)
                speed[name].append(len(texts) / (time.perf_counter() - start))
            lowest[name] = float((vectors * reference).sum(1).min())
    table = Table(title=f"{args.collection}: {len(texts)} texts, @bf16, two alternating rounds")
    for column in ("attention", "docs/s per round", "x SDPA", "min cosine to fp32"):
        table.add_column(column, justify="left" if column == "attention" else "right")
    for name, rounds in speed.items():
        ratio = sum(rounds) / sum(speed["sdpa"])
        table.add_row(name, " / ".join(f"{r:.1f}" for r in rounds), f"{ratio:.2f}", f"{lowest[name]:.5f}")
    console.print(table)

    model, context = models["sdpa"]
    with context(), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        model.encode(texts[:600], batch_size=32)
    events = sorted(profile.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    shares = Table(title="self CPU time by operator, 600 texts, SDPA")
    shares.add_column("operator")
    shares.add_column("share", justify="right")
    for event in events[:8]:
        shares.add_row(event.key, f"{event.self_cpu_time_total / total:.1%}")
    console.print(shares)


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
