"""What an evaluation suite keeps on disk and reads back: its JSON files (atomic), an index's
size as the report counts it, the checksum of a query set's judgments, and the report folder's
own check."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from tessera.data.datasets import EvalDataset
from tessera.durable import check_parents, write_text_atomic
from tessera.errors import TesseraError
from tessera.indexing.manifest import Manifest


def write_json(path: Path, data: object) -> None:
    """Atomically: a pair file is either absent or complete (insertion order: the report's order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(data, indent=1) + "\n")


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def index_bytes(root: Path, manifest: Manifest) -> int:
    """Bytes of the search structure: every file of the index directory but the document store,
    which every system holds alike, and a trained query encoder kept inside it (model weights,
    not a cost per document)."""
    encoder = manifest.query_encoder
    skip = root / encoder if encoder else None
    return sum(
        p.stat().st_size
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith("docstore") and not (skip and p.is_relative_to(skip))
    )


def judgments_sha256(data: EvalDataset) -> str:
    """A checksum of a query set's queries and judgments: a pair is scored again when either
    changes, not only its index or run (an edited qrels file kept its old numbers)."""
    text = json.dumps([sorted(data.queries.items()), sorted(data.qrels.items())], sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def total(values: Iterable[float | None]) -> float | None:
    """A sum that is unknown when any part is."""
    values = list(values)
    return None if None in values else sum(values)


def check_report_folder(root: Path) -> None:
    """A report goes into a folder of its own: not a file, an index or a dataset (whose folder
    it would fill with runs, pairs and indexes), refused before any work."""
    check_parents(root, "output")
    if root.exists() and not root.is_dir():
        raise TesseraError("is a file, not a folder for the report", file=root, field="output")
    for folder in (root, *root.expanduser().absolute().parents):  # nor a folder inside one
        for marker, what in (("manifest.json", "an index"), ("corpus.jsonl", "a dataset")):
            if (folder / marker).is_file():
                where = f"is {what}'s folder" if folder == root else f"is inside {what}'s folder '{folder}'"
                why = f"{where} ({marker}): write the report elsewhere"
                raise TesseraError(why, file=root, field="output")
