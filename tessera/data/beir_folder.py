"""Writing BEIR folders durably: the one place tessera/data writes them.

A folder is written into a staging folder beside its target, fsynced, and renamed onto the
target, so the target is absent, the old folder, or complete. Files are UTF-8 with `\\n`
line ends; TSV rows are tab-separated.
"""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from tessera import durable
from tessera.data.datasets import Qrels
from tessera.durable import publish_dir

QRELS_HEADER = ("query-id", "corpus-id", "score")


# What `data beir`, `data longdoc` and `data loco` write into a BEIR folder, and so may replace.
WRITTEN = (
    "corpus.jsonl",
    "queries.jsonl",
    *(f"qrels/{split}.tsv" for split in ("all", "train", "test", "dev")),
    "members.tsv",
    "lost.tsv",
    "longdoc.json",
    "loco.json",
)


def new_target(output: str | Path, overwrite: bool, inputs: Iterable[str | Path] = ()) -> Path:
    """A BEIR folder's target (`durable.new_target`): `overwrite` replaces a BEIR folder (one with
    `corpus.jsonl`) holding only what these jobs write, never a folder with other files."""
    return durable.new_target(
        output, overwrite, inputs, marker=("corpus.jsonl", "a BEIR folder"), owned=WRITTEN
    )


@contextmanager
def durable_open(path: Path) -> Iterator[IO[str]]:
    """Open `path` for writing text; flushed and fsynced when the block ends without an error."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def tsv_writer(handle: IO[str]):
    """A csv writer of tab-separated rows ending in `\\n`."""
    return csv.writer(handle, delimiter="\t", lineterminator="\n")


def write_qrels(path: Path, qrels: Qrels) -> None:
    """Write `qrels` as a BEIR qrels file (header `query-id corpus-id score`), in dict order."""
    with durable_open(path) as handle:
        rows = tsv_writer(handle)
        rows.writerow(QRELS_HEADER)
        for query_id, judged in qrels.items():
            rows.writerows([query_id, doc_id, grade] for doc_id, grade in judged.items())


def publish_folder(write: Callable[[Path], None], target: Path, overwrite: bool, tag: str) -> None:
    """Run `write(stage)` in a staging folder beside `target` (`qrels/` already made; `tag`
    names the stage), fsync it and rename it onto `target`, replacing an old folder only with
    `overwrite`. The stage is removed on any failure."""
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = target.with_name(f"{target.name}.tmp-{tag}-{os.getpid()}")
    shutil.rmtree(stage, ignore_errors=True)
    try:
        (stage / "qrels").mkdir(parents=True)
        write(stage)
        publish_dir(stage, target, overwrite)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
