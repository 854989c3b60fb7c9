"""Writes over HTTP (`tessera serve --writable`): what a request costs, by documents per request.

Question: every `POST /v1/indexes/{name}/documents` is one atomic update, and an update copies
the index (and a BM25 index rebuilds its Lucene index). How much does batching documents into
one request save, and what does the HTTP route add over `Index.add` in Python?

Each encoder's index holds a collection's first `--base` documents; the next documents are then
added in requests of 1, 10 and 100 documents (`--requests` requests each, on a fresh copy of the
index), through the service (FastAPI's in-process client, so no network) and through
`Index.add` on another copy. Times are per request, wall clock, on a warm file cache.

    TESSERA_DATA_DIR=../shared/data python benchmarks/serve_writes.py --collection cranfield-beir
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from fastapi.testclient import TestClient
from rich.console import Console
from rich.table import Table

from tessera import config
from tessera.cli import at_least
from tessera.indexing.builder import build_index
from tessera.retrieval.index import Index
from tessera.serve import ServeSettings, create_app

SIZES = (1, 10, 100)
ENCODERS = ("minilm", "bm25")


def records(corpus: Path, start: int, count: int) -> list[dict]:
    lines = corpus.read_text(encoding="utf-8").splitlines()[start : start + count]
    docs = [json.loads(line) for line in lines]
    return [{"id": d["_id"], "title": d.get("title", ""), "text": d["text"]} for d in docs]


def over_http(index: Path, batches: list[list[dict]]) -> list[float]:
    settings = ServeSettings.from_specs([f"idx={index}"], writable=True, reload_seconds=0)
    with TestClient(create_app(settings)) as client:
        while client.get("/health").status_code != 200:
            time.sleep(0.05)
        times = []
        for batch in batches:
            started = time.perf_counter()
            response = client.post("/v1/indexes/idx/documents", json={"documents": batch})
            times.append(time.perf_counter() - started)
            assert response.status_code == 200, response.text
    return times


def in_python(index: Path, batches: list[list[dict]], work: Path) -> list[float]:
    opened, times = Index.load(index), []
    for number, batch in enumerate(batches):
        path = work / f"batch-{number}.jsonl"
        rows = ({"_id": d["id"], "title": d["title"], "text": d["text"]} for d in batch)
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        started = time.perf_counter()
        opened.add(path)
        times.append(time.perf_counter() - started)
    return times


def measure(collection: str, base: int, requests: int, work: Path, console: Console) -> list[dict]:
    saved = work / "results" / f"{collection}.base{base}.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    corpus = config.data_dir() / collection / "corpus.jsonl"
    head = work / f"{collection}-head{base}.jsonl"
    head.write_text("".join(corpus.read_text(encoding="utf-8").splitlines(keepends=True)[:base]))
    rows = []
    for encoder in ENCODERS:
        built = work / "indexes" / f"{collection}-{encoder}-{base}"
        if not (built / "manifest.json").is_file():
            build_index(head, built, encoder, show_progress=False)
        for size in SIZES:
            docs = records(corpus, base, size * requests)
            batches = [docs[i : i + size] for i in range(0, len(docs), size)]
            row = {"encoder": encoder, "size": size, "requests": len(batches)}
            for way in ("http", "python"):
                copy = work / "copies" / f"{encoder}-{size}-{way}"
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(built, copy)
                times = over_http(copy, batches) if way == "http" else in_python(copy, batches, work)
                row[way] = times
                shutil.rmtree(copy)
            rows.append(row)
            console.log(
                f"{encoder} {size}/request: http {sum(row['http']):.1f} s, python {sum(row['python']):.1f} s"
            )
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(rows))
    return rows


def table(collection: str, base: int, rows: list[dict]) -> Table:
    out = Table(title=f"{collection}: adding documents to a {base}-document index, by documents per request")
    columns = ("encoder", "docs/request", "requests", "HTTP ms/request", "HTTP docs/s", "Index.add docs/s",
               "HTTP / Index.add time", "docs/s vs 1 a request")  # fmt: skip
    for column in columns:
        out.add_column(column, justify="left" if column == "encoder" else "right")
    single = {
        row["encoder"]: row["size"] * row["requests"] / sum(row["http"]) for row in rows if row["size"] == 1
    }
    for row in rows:
        docs = row["size"] * row["requests"]
        http, python = sum(row["http"]), sum(row["python"])
        out.add_row(
            row["encoder"],
            str(row["size"]),
            str(row["requests"]),
            f"{1000 * http / row['requests']:,.0f}",
            f"{docs / http:,.1f}",
            f"{docs / python:,.1f}",
            f"{http / python:.2f}x",
            f"{docs / http / single[row['encoder']]:.1f}x",
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--collection", default="cranfield-beir")
    parser.add_argument("--base", type=at_least(1), default=1000)
    parser.add_argument("--requests", type=at_least(1), default=4)
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "benchmarks" / "serve-writes")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    console = Console(width=160)
    console.print(
        table(
            args.collection, args.base, measure(args.collection, args.base, args.requests, args.work, console)
        )
    )


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
