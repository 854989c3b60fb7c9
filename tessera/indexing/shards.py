"""Vector shards on disk, built into faiss indexes with memory bounded by one chunk.

A shard is a file of float32 rows (`.f32`, row-major, no header: the dimension comes from the
manifest), written whole and atomically so a file that exists is complete. Distributed
encoding (`distributed.py`) writes one per input shard; `benchmarks/scaling.py` streams
synthetic ones. Building never maps a whole shard: rows are read with explicit offsets, so
the process holds the index being built plus one `ADD_CHUNK` of vectors (96 MiB at 384-d),
whatever the corpus size. Quantizers train on the same seeded sample of rows
(`faiss_backend.sample_rows`) the in-memory builder uses, so both give the same index.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import faiss
import numpy as np

from tessera.errors import IndexFormatError
from tessera.indexing.faiss_backend import ADD_CHUNK, create_index, sample_rows, train_index

ROW_BYTES = 4  # float32


def write_shard(path: Path, vectors: np.ndarray) -> str:
    """Write `vectors` to `path` atomically (temporary file, fsync, rename); return its sha256."""
    data = np.ascontiguousarray(vectors, dtype=np.float32).tobytes()
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    return hashlib.sha256(data).hexdigest()


def shard_rows(path: Path, dim: int) -> int:
    """Rows in a shard file; a size that is not whole rows means a damaged file."""
    size = path.stat().st_size
    if size % (dim * ROW_BYTES):
        raise IndexFormatError(
            f"{path.name}: {size} bytes is not a whole number of {dim}-d rows", file=str(path)
        )
    return size // (dim * ROW_BYTES)


def read_rows(path: Path, dim: int, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of a shard, read (not mapped) so they leave no pages behind."""
    count = (stop - start) * dim
    return np.fromfile(path, dtype=np.float32, count=count, offset=start * dim * ROW_BYTES).reshape(-1, dim)


def chunks(files: Sequence[Path], dim: int, size: int = ADD_CHUNK) -> Iterator[np.ndarray]:
    """Every row of `files` in order, `size` rows at a time (a chunk never spans two files)."""
    for path in files:
        rows = shard_rows(path, dim)
        for start in range(0, rows, size):
            yield read_rows(path, dim, start, min(rows, start + size))


def gather_sample(files: Sequence[Path], dim: int, seed: int = 0) -> np.ndarray:
    """The training sample of the rows of `files` taken together, in one sequential pass: the
    same rows `build_faiss_index` trains on when given all rows as one array."""
    counts = [shard_rows(path, dim) for path in files]
    wanted = sample_rows(sum(counts), seed)
    sample = np.empty((len(wanted), dim), dtype=np.float32)
    filled, base = 0, 0
    for block in chunks(files, dim):
        stop = base + len(block)
        lo, hi = np.searchsorted(wanted, [base, stop])
        sample[filled : filled + hi - lo] = block[wanted[lo:hi] - base]
        filled, base = filled + hi - lo, stop
    return sample


def trained_index(
    files: Sequence[Path], dim: int, factory: str, metric: str = "ip", seed: int = 0
) -> faiss.Index:
    """An empty index of `factory`, trained (when it needs training) on the rows of `files`."""
    index = create_index(dim, factory, metric)
    if not index.is_trained:
        train_index(index, gather_sample(files, dim, seed), factory)
    return index


def fill(
    index: faiss.Index, files: Sequence[Path], advance: Callable[[int], None] | None = None
) -> faiss.Index:
    """Add every row of `files` to `index` in order (labels continue from `index.ntotal`)."""
    for block in chunks(files, index.d):
        index.add(block)
        if advance is not None:
            advance(len(block))
    return index


def build_from_shards(
    files: Sequence[Path],
    dim: int,
    factory: str,
    metric: str = "ip",
    seed: int = 0,
    advance: Callable[[int], None] | None = None,
) -> faiss.Index:
    """One CPU index of all rows of `files`, equal to `build_faiss_index` on their concatenation
    (HNSW: an equally good graph, not the same one, since a graph depends on how rows were
    batched into `add`), holding only the index and one chunk in memory."""
    return fill(trained_index(files, dim, factory, metric, seed), files, advance)


def merge_parts(parts: Sequence[faiss.Index]) -> faiss.Index:
    """Concatenate indexes that share one trained state (filled from consecutive shards) into
    the first: labels of each part are shifted by the rows before it. Flat and IVF kinds
    (OPQ/PCA-wrapped too) merge; HNSW graphs cannot, and are built from the shards instead."""
    merged = parts[0]
    # IVF lists store labels, shifted here; flat codes are labelled by position and append.
    shift = faiss.try_extract_index_ivf(merged) is not None
    for part in parts[1:]:
        try:
            merged.merge_from(part, merged.ntotal if shift else 0)
        except RuntimeError as exc:
            raise IndexFormatError(
                f"faiss cannot merge {type(part).__name__} indexes: {str(exc).strip().splitlines()[-1]}"
            ) from None
    return merged


class ShardRows:
    """The rows of several shard files seen as one read-only array (length, slices, sorted row
    numbers), so tuning can sample and scan a distributed build's vectors without a copy."""

    def __init__(self, files: Sequence[Path], dim: int):
        self.files, self.dim = list(files), dim
        counts = [shard_rows(path, dim) for path in self.files]
        self.starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def shape(self) -> tuple[int, int]:
        return len(self), self.dim

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step != 1:
                raise IndexError("shard rows take slices with step 1")
            return self._span(start, stop)
        rows = np.asarray(key, dtype=np.int64)
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        shard = np.searchsorted(self.starts, rows, side="right") - 1
        for number in np.unique(shard):
            mine = shard == number
            base = self.starts[number]
            wanted = rows[mine] - base
            lo, hi = wanted.min(), wanted.max() + 1
            if hi - lo <= 4 * len(wanted):  # dense: one read, then pick
                out[mine] = read_rows(self.files[number], self.dim, lo, hi)[wanted - lo]
            else:  # sparse (a sample across a large shard): row by row, never the whole span
                path = self.files[number]
                out[mine] = np.concatenate([read_rows(path, self.dim, r, r + 1) for r in wanted])
        return out

    def _span(self, start: int, stop: int) -> np.ndarray:
        parts = []
        for number, path in enumerate(self.files):
            lo, hi = max(start, self.starts[number]), min(stop, self.starts[number + 1])
            if lo < hi:
                parts.append(read_rows(path, self.dim, lo - self.starts[number], hi - self.starts[number]))
        return np.concatenate(parts) if parts else np.empty((0, self.dim), dtype=np.float32)


def mergeable(index: faiss.Index) -> bool:
    """Whether parts of this kind merge into what one build gives (IVF and flat-code kinds,
    transforms included); HNSW graphs and other structures do not."""
    inner = faiss.downcast_index(index)
    while isinstance(inner, faiss.IndexPreTransform):
        inner = faiss.downcast_index(inner.index)
    return faiss.try_extract_index_ivf(index) is not None or isinstance(inner, faiss.IndexFlatCodes)


def fill_part(trained: np.ndarray, vectors: Path, part: Path) -> int:
    """Fill a copy of the serialized trained state `trained` with one shard's rows and write it
    to `part` atomically; returns its rows. Parts of one trained state merge (`merge_parts`)."""
    index = fill(faiss.deserialize_index(trained), [vectors])
    partial = part.with_name(part.name + ".partial")
    faiss.write_index(index, str(partial))
    os.replace(partial, part)
    return int(index.ntotal)
