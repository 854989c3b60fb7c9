"""Phase 3 of a distributed build: the encoded shards become the vector index.

The driver trains one quantizer state on the seeded sample of all rows
(`shards.trained_index`: the rows the single-process build samples) and Ray tasks fill one copy
of it per shard (`shards/NAME.faiss`). Layout `merged` merges the parts (`shards.merge_parts`)
into one `vectors.faiss`, the index the single-process build makes (HNSW is built from the shard
files in order instead; binary/BEBR from their concatenation). Layout `sharded` keeps the parts,
searched by `ShardedBackend`, which returns the merged layout's results (Flat and IVF kinds).
Defaults are tuned as the builder does (`tuning.tune`); a sharded index is tuned by searching
its shards, which returns what the merged index would, so both layouts get one value.
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from tessera.indexing.backends import Params, build_vector_backend, kind_of
from tessera.indexing.faiss_backend import FaissBackend
from tessera.indexing.manifest import Manifest
from tessera.indexing.ray_encoding import PLAN, RayBuildError, Shard, last_line
from tessera.indexing.sharded_backend import FOLDER, ShardedBackend, part_name
from tessera.indexing.shards import (
    ShardRows,
    chunks,
    fill,
    fill_part,
    merge_parts,
    mergeable,
    shard_rows,
    trained_index,
)
from tessera.indexing.tuning import tune


def _fill_parts(ray, root: Path, plan: list[Shard], files: list[Path], trained: faiss.Index) -> list[Path]:
    """One copy of the trained state per shard, filled by Ray tasks (one CPU, one faiss thread
    each) and written to shards/NAME.faiss; parts already written by a killed run are kept."""
    parts = [root / part_name(shard.name) for shard in plan]
    state = ray.put(faiss.serialize_index(trained))
    task = ray.remote(num_cpus=1, max_retries=3)(_fill_task)
    pending = [
        task.remote(state, str(f), str(p)) for f, p in zip(files, parts, strict=True) if not p.is_file()
    ]
    try:
        ray.get(pending)
    except Exception as exc:
        raise RayBuildError(f"filling shard indexes failed (run again to resume): {last_line(exc)}") from exc
    return parts


def _fill_task(state: np.ndarray, vectors: str, part: str) -> int:
    faiss.omp_set_num_threads(1)
    return fill_part(state, Path(vectors), Path(part))


def build_merged(ray, root: Path, plan, files, manifest: Manifest, show: bool) -> tuple[Params, dict]:
    """`vectors.faiss` (or the binary/BEBR files) equal to the single-process build's, tuned
    the same way; returns (search defaults, tuning record)."""
    params = manifest.search_params
    if kind_of(manifest.factory) != "faiss":
        return _build_other(root, files, manifest, show)
    trained = trained_index(files, manifest.dim, manifest.factory)
    if mergeable(trained):
        index = _merge_from_disk(_fill_parts(ray, root, plan, files, trained))
    else:  # HNSW and other graphs: added in order, one chunk at a time
        index = fill(trained, files)
    tuned, record = tune(index, ShardRows(files, manifest.dim), params)
    backend = FaissBackend(index, {**tuned, **params})
    backend.save(root)
    return backend.search_params, record


def _merge_from_disk(parts: list[Path]) -> faiss.Index:
    """Merge part files in order, holding the merged index and one part."""
    merged = faiss.read_index(str(parts[0]))
    for path in parts[1:]:
        merged = merge_parts([merged, faiss.read_index(str(path))])
    return merged


def _build_other(root: Path, files: list[Path], manifest: Manifest, show: bool) -> tuple[Params, dict]:
    """Binary and BEBR backends build from one array: the shards concatenated into a scratch
    file, mapped, then removed."""
    scratch = root / "vectors.f32.partial"
    with scratch.open("wb") as handle:
        for block in chunks(files, manifest.dim):
            handle.write(block.tobytes())
    count = sum(shard_rows(path, manifest.dim) for path in files)
    vectors = np.memmap(scratch, dtype=np.float32, mode="r", shape=(count, manifest.dim))
    backend = build_vector_backend(vectors, manifest.factory, manifest.search_params, show)
    backend.save(root)
    del vectors
    scratch.unlink()
    return getattr(backend, "search_params", manifest.search_params), getattr(backend, "tuning", {})


def build_sharded(ray, root: Path, plan, files, manifest: Manifest, show: bool) -> tuple[Params, dict]:
    """One faiss index per shard from one trained state, tuned by searching the shards (which
    returns what the merged index would)."""
    trained = trained_index(files, manifest.dim, manifest.factory)
    parts = _fill_parts(ray, root, plan, files, trained)
    names = [shard.name for shard in plan]
    backend = ShardedBackend([faiss.read_index(str(p)) for p in parts], [s.first for s in plan], names)
    params = manifest.search_params
    tuned, record = tune(
        backend.parts[0], ShardRows(files, manifest.dim), params, search=backend.tuning_search
    )
    return {**tuned, **params}, record


def drop_scratch(root: Path, files: list[Path], layout: str) -> None:
    """Remove what only the build needed: shard vectors, the plan, merged-away parts."""
    for path in files:
        path.unlink(missing_ok=True)
        if layout == "merged":
            path.with_suffix(".faiss").unlink(missing_ok=True)
    (root / FOLDER / PLAN).unlink(missing_ok=True)
    if not any((root / FOLDER).iterdir()):
        (root / FOLDER).rmdir()
