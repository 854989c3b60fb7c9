"""Question: does padding `@openvino` inputs to a multiple of 8 tokens (`runtimes.engines.SHAPE_STEP`)
make it faster, and does it change the vectors?

    python benchmarks/openvino_shapes.py [--collection cranfield] [--docs 2000] [--rounds 2]

One process, the bundled MiniLM on `@openvino`: the same texts encoded with the sequence length
padded to a multiple of 8 and unpadded (`SHAPE_STEP = 1`), taking turns, at batch sizes 16-128;
docs/s per round, padded / unpadded, and the lowest per-text cosine between the two.
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

from tessera.cli import at_least
from tessera.data.corpus import open_corpus
from tessera.models.registry import load_encoder
from tessera.models.runtimes import engines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collection", default="cranfield")
    parser.add_argument("--docs", type=at_least(1), default=2000)
    parser.add_argument("--rounds", type=at_least(1), default=2)
    args = parser.parse_args()
    texts = [doc.contents for doc in open_corpus(args.collection)][: args.docs]
    encoder = load_encoder("minilm@openvino")
    model = encoder.model
    step = engines.SHAPE_STEP
    model.encode(texts[:64])
    table = Table(title=f"{args.collection}: {len(texts)} texts, @openvino, padded to {step} vs unpadded")
    for column in ("batch", "round", "padded docs/s", "unpadded docs/s", "padded / unpadded", "min cosine"):
        table.add_column(column, justify="right")
    for round_ in range(args.rounds):
        for batch in (16, 32, 64, 128):
            speed, vectors = {}, {}
            for name, value in (("padded", step), ("unpadded", 1)):
                engines.SHAPE_STEP = value
                start = time.perf_counter()
                vectors[name] = model.encode(texts, batch_size=batch, normalize_embeddings=True)
                speed[name] = len(texts) / (time.perf_counter() - start)
            engines.SHAPE_STEP = step
            cosine = float((vectors["padded"] * vectors["unpadded"]).sum(1).min())
            table.add_row(
                str(batch),
                str(round_ + 1),
                f"{speed['padded']:.1f}",
                f"{speed['unpadded']:.1f}",
                f"{speed['padded'] / speed['unpadded']:.2f}",
                f"{cosine:.5f}",
            )
    Console().print(table)


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
