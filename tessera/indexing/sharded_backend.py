"""A vector index kept as one faiss index per input shard (`tessera index --ray --layout sharded`).

Every shard's index was filled from the same trained state (indexing/distributed.py), so an
IVF shard has the merged index's centroids and, for any nprobe, probes the same lists; the
top k of each shard, labels shifted by the shard's first ordinal and merged by score, is the
merged index's top k (same ids, same scores). Flat and IVF kinds only: HNSW graphs built per
shard would not search like one graph, so that layout is refused at build time. The shards
are searched one after another on the CPU; updates add a shard or rewrite only the shards they
touch (shard_edits.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from tessera.errors import EncoderError, IndexFormatError, TesseraError
from tessera.indexing.faiss_backend import apply_search_params, read_faiss
from tessera.indexing.manifest import Manifest

FOLDER = "shards"


def part_name(shard: str) -> str:
    """Where a shard's faiss index lives inside the index directory."""
    return f"{FOLDER}/{shard}.faiss"


class ShardedBackend:
    """Searches shard by shard and keeps the best k; labels are docstore ordinals."""

    supports_remove = False
    on_gpu = False

    def __init__(
        self,
        parts: Sequence[faiss.Index],
        firsts: Sequence[int],
        names: Sequence[str],
        search_params: dict | None = None,
    ):
        if not parts:
            raise IndexFormatError("a sharded index needs at least one shard")
        self.parts, self.firsts, self.names = list(parts), [int(first) for first in firsts], list(names)
        self.dim = int(self.parts[0].d)
        self.search_params = dict(search_params or {})
        self.tuning: dict = {}
        self.set_params(self.search_params)

    @classmethod
    def load(
        cls, root: Path, manifest: Manifest, search_params: dict | None = None, mmap: bool = False
    ) -> ShardedBackend:
        parts = []
        for shard in manifest.shards:
            path = root / part_name(str(shard["name"]))
            if not path.is_file():
                raise IndexFormatError("shard index listed in the manifest is missing", file=path)
            parts.append(read_faiss(path, mmap))
        firsts = [int(shard["first"]) for shard in manifest.shards]
        return cls(parts, firsts, [str(shard["name"]) for shard in manifest.shards], search_params)

    @property
    def ntotal(self) -> int:
        return sum(int(part.ntotal) for part in self.parts)

    def exact_vectors(self) -> np.ndarray:
        """Every shard's stored float vectors in label order (shards are listed by first label;
        Flat shards keep their vectors exactly)."""
        for part in self.parts:
            if not isinstance(part, faiss.IndexFlat):
                raise TesseraError(
                    f"reindex reads the vectors of Flat shards, not of {type(part).__name__} ones: "
                    "index the corpus again (`tessera index`)",
                    field="factory",
                )
        return np.concatenate([part.reconstruct_n(0, part.ntotal) for part in self.parts])

    def set_params(self, params: dict) -> None:
        """The same nprobe/efSearch/... on every shard, as on the merged index."""
        for part in self.parts:
            apply_search_params(part, params)

    def save(self, root: Path) -> None:
        (root / FOLDER).mkdir(exist_ok=True)
        for part, name in zip(self.parts, self.names, strict=True):
            faiss.write_index(part, str(root / part_name(name)))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise EncoderError(
                f"dimension mismatch: index holds {self.dim}-d vectors, queries are {queries.shape[-1]}-d",
                field="dim",
            )
        k = min(k, self.ntotal)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        scores, labels = [], []
        for part, first in zip(self.parts, self.firsts, strict=True):
            found_s, found_l = part.search(queries, min(k, int(part.ntotal)))
            scores.append(found_s)
            labels.append(np.where(found_l >= 0, found_l + first, -1))
        return top_k(
            np.concatenate(scores, axis=1), np.concatenate(labels, axis=1), k, self.parts[0].metric_type
        )

    def tuning_search(self, name: str, value: int, queries: np.ndarray, k: int) -> np.ndarray:
        """`tuning.tune`'s searcher: every shard at `name`=`value`, merged top k labels."""
        self.set_params({name: value})
        return self.search(queries, k)[1]


def top_k(scores: np.ndarray, labels: np.ndarray, k: int, metric: int) -> tuple[np.ndarray, np.ndarray]:
    """The best k of per-shard results (higher inner product, lower L2); a stable sort keeps
    ties in shard order, i.e. by label, and empty slots (-1) last."""
    key = -scores if metric == faiss.METRIC_INNER_PRODUCT else scores.copy()
    key[labels < 0] = np.inf
    order = np.argsort(key, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, 1), np.take_along_axis(labels, order, 1)
