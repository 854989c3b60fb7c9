"""Question: how much faster does `distributed.build_index_ray` index a real collection with 2
workers than with 1, and how does it compare with the single-process builder? (issue 15;
docs/scaling.md, section B)

    python benchmarks/ray_scaling.py [--corpus .tessera-cache/data/lisa-beir/corpus.jsonl]
        [--workers 1,2]

docs/s of `distributed.build_index_ray` with 1 and 2 workers (one CPU and one torch thread each,
one shard per worker) against the single-process `builder.build_index` (minilm, Flat, torch on
every core) on a real collection (default: CISI's BEIR copy under TESSERA_DATA_DIR): end to
end, and the encode phase alone (the slowest shard's encoding seconds, which each actor logs).
The indexes go to a temporary folder under `.tessera-cache/bench/scaling/`; the table is also
written to `.tessera-cache/bench/ray_scaling.txt`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scaling_stages import ROOT  # noqa: E402


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
        runs = [("build_index (one process)", None)] + [("build_index_ray", w) for w in args.workers]
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
    from rich.console import Console

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--corpus",
        default=os.path.join(os.environ.get("TESSERA_DATA_DIR", "data"), "cisi-beir", "corpus.jsonl"),
    )
    parser.add_argument(
        "--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2], help="Ray worker counts"
    )
    args = parser.parse_args()
    console = Console(width=160, record=True)
    ROOT.mkdir(parents=True, exist_ok=True)  # the runs' temporary folder goes here
    ray_part(args, console)
    (ROOT.parent / "ray_scaling.txt").write_text(console.export_text())


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
