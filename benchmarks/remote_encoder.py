"""What does encoding through an OpenAI-compatible embeddings endpoint cost against the same model
in this process?

`--encoder http://HOST/v1#MODEL` (models/remote.py) sends 64 texts a request as JSON and reads
the vectors back as JSON. Here the endpoint is a `tessera serve` of a MiniLM index in another
process on 127.0.0.1 (its `/v1/embeddings` runs the same MiniLM), so the difference between the
two rows is the HTTP hop: serialising, the loopback socket, parsing, and the server's request
handling. Each collection's documents (title and text, as a build encodes them) through
`encode_docs` in batches of 512, fp32 on the same cores, rounds interleaved; median seconds and
the vectors' largest difference.

    TESSERA_DATA_DIR=../shared/data python benchmarks/remote_encoder.py --collections cranfield-beir cisi-beir
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from tessera import config
from tessera.cli import at_least
from tessera.indexing.builder import build_index
from tessera.models.registry import load_encoder
from tessera.models.remote import RemoteEncoder

BATCH = 512


def texts_of(collection: str, limit: int) -> list[str]:
    rows = (config.data_dir() / collection / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:limit]
    docs = [json.loads(line) for line in rows]
    return [f"{d['title']} {d['text']}" if d.get("title") else d["text"] for d in docs]


def seconds(encode, texts: list[str]) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    vectors = np.concatenate([encode(texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)])
    return time.perf_counter() - started, vectors


def serve(index: Path, port: int) -> subprocess.Popen:
    """`tessera serve` of the index in its own process, once its health check answers."""
    command = [sys.executable, "-c", "from tessera.cli import main; main()", "serve", f"idx={index}"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    server = subprocess.Popen([*command, "--port", str(port)], **quiet)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as answer:
                if answer.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the service did not start")


def measure(local, remote, collection: str, docs: int, rounds: int) -> list[str]:
    texts = texts_of(collection, docs)
    here, there = [], []
    for _ in range(rounds):  # interleaved: drift in the machine's speed hits both
        took, mine = seconds(local.encode_docs, texts)
        here.append(took)
        took, theirs = seconds(remote.encode_docs, texts)
        there.append(took)
    a, b = statistics.median(here), statistics.median(there)
    largest = float(np.abs(mine - theirs).max())
    return [collection, f"{a:.1f}", f"{b:.1f}", f"{b / a:.3f}x", f"{len(texts) / b:.0f}", f"{largest:.1e}"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--collections", nargs="+", default=["cranfield-beir", "cisi-beir"])
    parser.add_argument("--docs", type=at_least(1), default=1000, help="documents of each collection")
    parser.add_argument("--rounds", type=at_least(1), default=3)
    parser.add_argument("--port", type=int, default=8731)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    local = load_encoder("minilm")
    title = f"MiniLM encode_docs, {args.docs} documents, batches of {BATCH}, median of {args.rounds}"
    table = Table(title=title)
    for column in ("collection", "in process s", "endpoint s", "ratio", "docs/s (endpoint)", "max |Δ|"):
        table.add_column(column, justify="left" if column == "collection" else "right")
    with tempfile.TemporaryDirectory() as work:
        sample = Path(work) / "sample.jsonl"
        sample.write_text(json.dumps({"_id": "1", "text": "a document"}) + "\n")
        server = serve(build_index(sample, Path(work) / "idx", "minilm", show_progress=False), args.port)
        try:
            remote = RemoteEncoder(f"http://127.0.0.1:{args.port}/v1#idx")
            for collection in args.collections:
                table.add_row(*measure(local, remote, collection, args.docs, args.rounds))
        finally:
            server.terminate()
            server.wait(timeout=30)
    Console().print(table)


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
