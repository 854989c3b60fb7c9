"""Job: exact and re-scored search over float32 vector shards on disk, for the scaling
benchmark's search stage (benchmarks/scaling_stages.py; docs/scaling.md): a row view that
`tuning.tune` can read and that gathers rows by number, the streamed exact top k, and the
re-scoring of an index's candidates with their exact rows.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from tessera.indexing.shards import ShardRows

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mixture import DIM, K  # noqa: E402


class ShardView(ShardRows):
    """`shards.ShardRows` (slices read with offsets, nothing stays mapped: what `tuning.tune`
    reads) plus `take`, which gathers rows by number from per-shard memmaps, touching only the
    pages of the rows asked for: the fast gather that re-ranking needs."""

    def __init__(self, files: list[Path], dim: int = DIM):
        super().__init__(files, dim)
        self.offsets = self.starts
        counts = np.diff(self.starts)
        self.maps = [
            np.memmap(f, dtype=np.float32, mode="r", shape=(int(c), dim))
            for f, c in zip(files, counts, strict=True)
        ]

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows by number (-1, faiss' "no result", gives row 0 of its shard: callers mask it)."""
        flat = np.maximum(rows.ravel(), 0)
        if len(self.maps) == 1:
            return np.asarray(self.maps[0])[flat].reshape(*rows.shape, self.dim)
        out = np.empty((len(flat), self.dim), np.float32)
        which = np.searchsorted(self.offsets, flat, side="right") - 1
        order = np.argsort(which, kind="stable")
        bounds = np.searchsorted(which[order], np.arange(len(self.maps) + 1))
        for i, mm in enumerate(self.maps):
            pick = order[bounds[i] : bounds[i + 1]]
            if len(pick):
                out[pick] = np.asarray(mm)[flat[pick] - self.offsets[i]]
        return out.reshape(*rows.shape, self.dim)


def streamed_exact(files: list[Path], queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact inner-product top k of `queries` over every row of `files`, one chunk at a time."""
    import faiss

    from tessera.indexing.shards import chunks

    best_s = np.full((len(queries), 0), -np.inf, np.float32)
    best_l = np.zeros((len(queries), 0), np.int64)
    base = 0
    for block in chunks(files, DIM):
        sc, lab = faiss.knn(queries, block, min(k, len(block)), metric=faiss.METRIC_INNER_PRODUCT)
        sc, lab = np.concatenate([best_s, sc], 1), np.concatenate([best_l, lab + base], 1)
        order = np.argsort(-sc, axis=1, kind="stable")[:, :k]
        best_s, best_l = np.take_along_axis(sc, order, 1), np.take_along_axis(lab, order, 1)
        base += len(block)
    return best_s, best_l


def reranked(index, view: ShardView, queries: np.ndarray, depth: int, k: int = K) -> np.ndarray:
    """Top k of the index's `depth` candidates, re-scored with their exact rows from disk
    (tuning asks for K + 1: `tune()` drops the query's own document from its answers)."""
    _, cand = index.search(queries, depth)
    rows = view.take(cand)  # (q, depth, d)
    scores = np.matmul(rows, queries[:, :, None])[..., 0]
    scores[cand < 0] = -np.inf
    order = np.argsort(-scores, axis=1)[:, :k]
    return np.take_along_axis(cand, order, 1)
