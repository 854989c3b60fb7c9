"""Tombstones: labels deleted from a vector index that cannot remove them (HNSW), skipped at
search time until `tessera compact` rebuilds the index (indexing/updates.py writes them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tessera.errors import IndexFormatError
from tessera.indexing.manifest import Manifest

TOMBSTONES = "tombstones.npy"
WIDEN_LIMIT = 256  # tombstones fetched past k in one search; more than that: widen by rounds


def read_tombstones(root: Path, manifest: Manifest) -> np.ndarray:
    if not manifest.tombstones:
        return np.zeros(0, dtype=np.int64)
    dead = np.load(root / TOMBSTONES)
    if dead.dtype != np.int64 or dead.ndim != 1 or len(dead) != manifest.tombstones:
        raise IndexFormatError(
            f"holds {dead.shape} {dead.dtype} labels; manifest says {manifest.tombstones} int64",
            file=root / TOMBSTONES,
        )
    return dead


class Tombstoned:
    """A vector backend whose deleted labels are skipped: searches deeper, drops them, keeps k."""

    def __init__(self, backend, dead: np.ndarray):
        self.backend, self.dead = backend, np.asarray(dead, dtype=np.int64)
        self.dim, self.on_gpu, self.supports_remove = backend.dim, backend.on_gpu, False

    @property
    def ntotal(self) -> int:
        return self.backend.ntotal

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        total = self.backend.ntotal
        k = max(1, min(k, total - len(self.dead)))
        fetch = min(total, k + min(len(self.dead), max(k, WIDEN_LIMIT)))
        while True:
            scores, labels = self.backend.search(queries, fetch)
            keep = (labels >= 0) & ~np.isin(labels, self.dead)
            if fetch >= total or (keep.sum(axis=1) >= k).all():
                break
            fetch = min(total, fetch * 4)
        order = np.argsort(~keep, axis=1, kind="stable")[:, :k]  # kept first, in rank order
        kept = np.take_along_axis(keep, order, axis=1)
        scores = np.where(kept, np.take_along_axis(scores, order, axis=1), -np.inf).astype(np.float32)
        return scores, np.where(kept, np.take_along_axis(labels, order, axis=1), -1)


def with_tombstones(root: Path, manifest: Manifest, backend):
    """`backend`, filtered when the index has tombstones (used by `Index.load`)."""
    return Tombstoned(backend, read_tombstones(root, manifest)) if manifest.tombstones else backend
