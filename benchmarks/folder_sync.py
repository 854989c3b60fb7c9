"""Syncing an index with a folder of files: what the size-and-time quick check saves.

Question: `tessera sync INDEX FOLDER` used to read (parse) every file of the folder to find what
changed. It now passes over files whose size and modification time are those stored when they
were read, as rsync does. How long does a sync take when nothing changed and when 1% of the
files were edited, with the quick check against reading every file (`--reread`, the old way),
and do both find the same changes and leave the same index?

Each collection is written as a folder of Markdown and of PDF files (benchmarks/file_ingest.py's
writers, cached), copied with its modification times, and indexed with BM25. Syncs are timed
best of `--repeats` on a warm file cache; for the edited case two copies of the index are
synced from the same edited folder, one each way, and their doc stores compared.

    TESSERA_DATA_DIR=../shared/data python benchmarks/folder_sync.py --collections cranfield-beir cisi-beir
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tessera import config
from tessera.cli import at_least
from tessera.indexing.builder import build_index
from tessera.indexing.sync import sync_index

sys.path.insert(0, str(Path(__file__).resolve().parent))
from file_ingest import write_folders, write_pdf  # noqa: E402

KINDS = ("markdown", "pdf")
EDITED_SHARE = 0.01
ADDED = "A later note on the same subject, added after the folder was indexed."


def timed_sync(index_dir: Path, folder: Path, reread: bool, repeats: int) -> tuple[float, dict]:
    """Best time of `repeats` syncs that change nothing, and the last plan's counts."""
    best, summary = float("inf"), {}
    for _ in range(repeats):
        started = time.perf_counter()
        summary = sync_index(index_dir, folder, reread=reread).summary
        best = min(best, time.perf_counter() - started)
    return best, summary


def edit(folder: Path, kind: str, docs: list[dict]) -> list[str]:
    """Append a sentence to every hundredth document's file (its time moves on); returns ids."""
    chosen = docs[:: round(1 / EDITED_SHARE)]
    for doc in chosen:
        title, text = " ".join(doc.get("title", "").split()), f"{doc['text']} {ADDED}"
        if kind == "markdown":
            (folder / f"{doc['_id']}.md").write_text(f"# {title}\n\n{text}\n" if title else text)
        else:
            write_pdf(folder / f"{doc['_id']}.pdf", title, text)
    later = time.time_ns() - 60 * 10**9  # settled, and later than the copies' times
    for doc in chosen:
        path = next(folder.glob(f"{doc['_id']}.*"))
        os.utime(path, ns=(later, later))
    return [doc["_id"] for doc in chosen]


def rows_of(index_dir: Path) -> list[tuple]:
    with sqlite3.connect(index_dir / "docstore.sqlite") as db:
        return db.execute("SELECT id, title, text, metadata FROM docs ORDER BY id").fetchall()


def measure(collection: str, kind: str, work: Path, repeats: int, console: Console) -> dict:
    saved = work / "results" / f"{collection}-{kind}.json"
    if saved.is_file():
        return json.loads(saved.read_text())
    source = config.data_dir() / collection
    original = write_folders(source, work.parent / "file-ingest")[kind]
    docs = [json.loads(line) for line in (source / "corpus.jsonl").open(encoding="utf-8")]
    folder = work / "folders" / f"{collection}-{kind}"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(original, folder, ignore=shutil.ignore_patterns(".done"))
    settled = time.time_ns() - 3600 * 10**9  # an hour old, as a folder indexed once and left
    for path in folder.iterdir():
        os.utime(path, ns=(settled, settled))
    index_dir = work / "indexes" / f"{collection}-{kind}"
    shutil.rmtree(index_dir, ignore_errors=True)
    started = time.perf_counter()
    build_index(folder, index_dir, "bm25", show_progress=False)
    row = {"files": len(docs), "build_s": time.perf_counter() - started}
    row["unchanged_reread_s"], reread_plan = timed_sync(index_dir, folder, True, repeats)
    row["unchanged_quick_s"], quick_plan = timed_sync(index_dir, folder, False, repeats)
    row["unchanged_unread"] = quick_plan["unread"]
    row["unchanged_changed"] = [reread_plan["changed"], quick_plan["changed"]]

    twin = index_dir.with_name(index_dir.name + "-reread")
    shutil.rmtree(twin, ignore_errors=True)
    shutil.copytree(index_dir, twin)
    row["edited"] = len(edit(folder, kind, docs))
    for name, path, reread in (("quick", index_dir, False), ("reread", twin, True)):
        started = time.perf_counter()
        plan = sync_index(path, folder, reread=reread)
        row[f"edited_{name}_s"] = time.perf_counter() - started
        row[f"edited_{name}_changed"] = len(plan.changed)
        row[f"edited_{name}_read"] = row["files"] - plan.unread
    row["same_index"] = rows_of(index_dir) == rows_of(twin)
    console.log(f"{collection} {kind}: {row}")
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(row))
    return row


def table(results: dict[tuple[str, str], dict]) -> Table:
    out = Table(title="tessera sync of a folder indexed with BM25: reading every file vs the quick check")
    columns = (
        "collection",
        "format",
        "files",
        "change",
        "every file (s)",
        "quick check (s)",
        "speed-up",
        "files read",
        "changed found (quick / every file)",
        "same index",
    )
    for column in columns:
        out.add_column(column, justify="left" if column in ("collection", "format", "change") else "right")
    for (collection, kind), row in results.items():
        unread = row["unchanged_unread"]
        out.add_row(
            collection,
            kind,
            str(row["files"]),
            "none",
            f"{row['unchanged_reread_s']:.2f}",
            f"{row['unchanged_quick_s']:.2f}",
            f"{row['unchanged_reread_s'] / row['unchanged_quick_s']:.1f}x",
            str(row["files"] - unread),
            "{1} / {0}".format(*row["unchanged_changed"]),
            "",
        )
        out.add_row(
            collection,
            kind,
            str(row["files"]),
            f"{row['edited']} edited",
            f"{row['edited_reread_s']:.2f}",
            f"{row['edited_quick_s']:.2f}",
            f"{row['edited_reread_s'] / row['edited_quick_s']:.1f}x",
            str(row["edited_quick_read"]),
            f"{row['edited_quick_changed']} / {row['edited_reread_changed']}",
            "yes" if row["same_index"] else "NO",
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--collections", nargs="+", default=["cranfield-beir", "cisi-beir"])
    parser.add_argument("--work", type=Path, default=config.cache_dir() / "benchmarks" / "folder-sync")
    parser.add_argument("--repeats", type=at_least(1), default=3)
    args = parser.parse_args()
    console = Console(width=160)
    results = {
        (collection, kind): measure(collection, kind, args.work, args.repeats, console)
        for collection in args.collections
        for kind in KINDS
    }
    console.print(table(results))


if __name__ == "__main__":
    from tessera.cli import report_errors

    report_errors(main)
