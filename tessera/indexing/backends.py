"""Which backend serves which index: one table for the builder, `reindex` and `Index.load`.

A factory string picks the kind when building: `binary` (sign bits, Hamming), `bebr:BITS`
(recurrent binarization, 1-4 bits per dimension) or any faiss factory string. The manifest's
`backend` field picks it again when loading; `sharded` (one faiss index per input shard) is
only made by distributed builds (indexing/distributed.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import faiss
import numpy as np

from tessera.errors import IndexFormatError, TesseraError
from tessera.indexing.faiss_backend import FaissBackend, build_faiss_index
from tessera.indexing.manifest import Manifest
from tessera.indexing.tuning import tune

Params = dict[str, float | str]


class VectorBackend(Protocol):
    dim: int
    ntotal: int
    on_gpu: bool
    supports_remove: bool

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def save(self, root: Path) -> None: ...


def kind_of(factory: str) -> str:
    """The manifest's `backend` for a factory string."""
    if factory == "binary":
        return "binary"
    if factory == "bebr" or factory.startswith("bebr:"):
        return "bebr"
    return "faiss"


def validate_factory(factory: str, dim: int) -> None:
    """Reject a bad factory string before the corpus is encoded, not hours later."""
    kind = kind_of(factory)
    if kind == "bebr":
        bebr_bits(factory)
    elif kind == "faiss":
        try:
            faiss.index_factory(dim, factory)
        except RuntimeError as exc:
            raise TesseraError(
                f"faiss cannot build '{factory}': {str(exc).strip().splitlines()[-1]}", field="index"
            ) from None
    if kind != "faiss" and dim % 8:
        raise TesseraError(f"binary codes need a dimension divisible by 8, not {dim}", field="index")


def check_tune_queries(factory: str) -> None:
    """`--tune-queries` needs a kind with a search parameter to tune (faiss IVF/HNSW)."""
    if kind_of(factory) != "faiss":
        raise TesseraError(f"'{factory}' has no search parameter to tune", field="tune_queries")


def build_vector_backend(
    vectors: np.ndarray,
    factory: str,
    params: Params,
    show_progress: bool = True,
    tune_queries: np.ndarray | None = None,
) -> VectorBackend:
    """Train (when the kind needs it) and fill a backend from document vectors.

    The backend's `search_params` are `params` over the tuned defaults of IVF and HNSW
    indexes, and its `tuning` the record of that measurement (empty for other kinds).
    `tune_queries`: encoded sample queries to tune on instead of perturbed corpus rows."""
    kind = kind_of(factory)
    if tune_queries is not None:
        check_tune_queries(factory)
    if kind == "faiss":
        index = build_faiss_index(vectors, factory)
        # IVF/HNSW: the default nprobe/efSearch is measured on this corpus (indexing/tuning.py).
        tuned, record = tune(index, vectors, params, queries=tune_queries)
        backend = FaissBackend(index, {**tuned, **params})
        backend.tuning = record
        return backend
    from tessera.indexing.binary_backend import BebrBackend, SignBinaryBackend

    if kind == "binary":
        return SignBinaryBackend.build(vectors)
    # Fitting the binarizer's start is unsupervised, like training a faiss quantizer: it kept as
    # much as the trained refinement on four collections; `tessera train bebr` runs that.
    from tessera.models.bebr_start import fit_start

    binarizer = fit_start(np.asarray(vectors, dtype=np.float32), bebr_bits(factory))
    return BebrBackend.build(binarizer, vectors, **_bebr_search(params))


def bebr_bits(factory: str) -> int:
    _, _, bits = factory.partition(":")
    if bits not in ("1", "2", "3", "4"):
        raise TesseraError(f"'{factory}': BEBR takes 1 to 4 bits per dimension, e.g. bebr:2", field="index")
    return int(bits)


def _bebr_search(params: Params) -> dict:
    """Search options of a BEBR index: mode=sdc|adc|hamming, rescore=N (hamming only)."""
    unknown = set(params) - {"mode", "rescore"}
    if unknown:
        raise TesseraError(
            f"BEBR indexes take mode and rescore, not {', '.join(sorted(unknown))}", field="search_params"
        )
    mode = params.get("mode")  # None: the default for the index's bits (search_params.bebr_default_mode)
    return {"mode": None if mode is None else str(mode), "rescore": int(params.get("rescore", 0))}


def open_vector_backend(root: Path, manifest: Manifest, params: Params, mmap: bool = False) -> VectorBackend:
    """The backend the manifest names; `mmap` maps faiss index files instead of reading them
    (faiss_backend.read_faiss). Binary and BEBR codes are read as they are."""
    if manifest.backend == "faiss":
        return FaissBackend.load(root, params, mmap)
    if manifest.backend == "sharded":
        from tessera.indexing.sharded_backend import ShardedBackend

        return ShardedBackend.load(root, manifest, params, mmap)
    if manifest.backend == "binary":
        from tessera.indexing.binary_backend import SignBinaryBackend

        return SignBinaryBackend.load(root)
    if manifest.backend == "bebr":
        from tessera.indexing.binary_backend import BebrBackend

        return BebrBackend.load(root, **_bebr_search(params))
    raise IndexFormatError(
        f"unknown backend '{manifest.backend}'", file=root / "manifest.json", field="backend"
    )
