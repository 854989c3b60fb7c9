"""Edits of a sharded index (`index --ray --layout sharded`) for `updates.py`.

A sharded index exists for collections too large to hold or copy casually, so an update
writes only the shards it must; `link_untouched` hard-links the others into the new version
(published files are never written in place, so a link is as good as a copy and costs nothing):
- `add` fills one new shard, an emptied copy of the first shard's trained state (the same
  IVF centroids, PQ codebooks or flat codes every shard was filled from), so the sharded
  index keeps searching like the merged one;
- `delete` removes the labels from the shards that hold them (`vector_edits.without`: the
  survivors renumbered in order) and moves every later shard's first ordinal down; a shard
  left empty is dropped.
Shard records keep `name`, `first` and `rows`; `sha256` (of the encoded input rows) stays only
on shards no update has changed.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import replace
from pathlib import Path

import faiss
import numpy as np

from tessera.indexing.manifest import Manifest
from tessera.indexing.sharded_backend import FOLDER, part_name
from tessera.indexing.vector_edits import refilled, without


def add_shard(root: Path, stage: Path, manifest: Manifest, vectors: np.ndarray) -> Manifest:
    """The index with `vectors` as one new shard after the last label."""
    (stage / FOLDER).mkdir(exist_ok=True)
    first = manifest.shards[0]["name"]
    trained = faiss.read_index(str(root / part_name(str(first))))
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    name = _next_name(manifest)
    faiss.write_index(refilled(trained, vectors), str(stage / part_name(name)))
    record = {
        "name": name,
        "first": manifest.doc_count + manifest.tombstones,
        "rows": len(vectors),
        "sha256": hashlib.sha256(vectors.tobytes()).hexdigest(),
    }
    return replace(manifest, shards=[*manifest.shards, record])


def remove_from_shards(root: Path, stage: Path, manifest: Manifest, gone: np.ndarray) -> Manifest:
    """The index without the labels `gone` (sorted), each shard renumbered in order."""
    (stage / FOLDER).mkdir(exist_ok=True)
    shards = []
    for shard in manifest.shards:
        first, rows, name = int(shard["first"]), int(shard["rows"]), str(shard["name"])
        local = gone[(gone >= first) & (gone < first + rows)] - first
        moved = {**shard, "first": first - int(np.searchsorted(gone, first))}
        if not len(local):
            shards.append(moved)
        elif len(local) < rows:
            part = without(faiss.read_index(str(root / part_name(name))), manifest, local)
            faiss.write_index(part, str(stage / part_name(name)))
            shards.append(
                {key: value for key, value in moved.items() if key != "sha256"} | {"rows": rows - len(local)}
            )
    return replace(manifest, shards=shards)


def _next_name(manifest: Manifest) -> str:
    numbers = [
        int(m.group(1)) for s in manifest.shards if (m := re.fullmatch(r"shard-(\d+)", str(s["name"])))
    ]
    return f"shard-{max(numbers, default=-1) + 1:05d}"


def link_untouched(root: Path, stage: Path, manifest: Manifest) -> None:
    """Every shard of `manifest` the update did not write, hard-linked from the published index
    (copied where links fail)."""
    for shard in manifest.shards:
        name = part_name(str(shard["name"]))
        if not (stage / name).exists():
            (stage / name).parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(root / name, stage / name)
            except OSError:
                shutil.copy2(root / name, stage / name)
