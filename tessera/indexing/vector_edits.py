"""Edits of a stored vector index for `updates.py`: remove labels (renumbering the survivors),
append vectors, rebuild from surviving vectors. Faiss kinds and the binary/BEBR codes."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from tessera.indexing.faiss_backend import FaissBackend, build_faiss_index
from tessera.indexing.manifest import Manifest


def read_faiss(root: Path) -> faiss.Index:
    return faiss.read_index(str(root / FaissBackend.FILE))


def innermost(index: faiss.Index) -> faiss.Index:
    """Below every IndexPreTransform (OPQ, PCA, L2norm)."""
    index = faiss.downcast_index(index)
    while isinstance(index, faiss.IndexPreTransform):
        index = faiss.downcast_index(index.index)
    return index


def removal(index: faiss.Index) -> str | None:
    """How a faiss index forgets vectors: `ivf` (by id, then renumbered), `shift` (flat codes:
    later vectors move down, which is the renumbering), or None (tombstones)."""
    inner = innermost(index)
    if isinstance(inner, faiss.IndexIVF):
        return "ivf"
    if isinstance(inner, faiss.IndexFlatCodes):
        return "shift"
    return None


def renumber_ivf(index: faiss.Index, gone: np.ndarray) -> None:
    """After remove_ids: ids in the inverted lists become survivors' ranks (old - deleted below)."""
    ivf = faiss.extract_index_ivf(index)
    lists = ivf.invlists
    for number in range(ivf.nlist):
        size = lists.list_size(number)
        if not size:
            continue
        ids = faiss.rev_swig_ptr(lists.get_ids(number), size).copy()
        renumbered = ids - np.searchsorted(gone, ids)
        codes = lists.get_codes(number)
        lists.update_entries(number, 0, size, faiss.swig_ptr(renumbered), codes)


def remove_vectors(root: Path, stage: Path, manifest: Manifest, gone: np.ndarray, rebuild: bool) -> bool:
    """Remove the vectors labelled `gone` and renumber the survivors 0..n-1 in order. A kind
    that cannot remove is rebuilt from its surviving vectors when `rebuild`, else left as it
    is (False: the caller tombstones)."""
    if manifest.backend in ("binary", "bebr"):
        from tessera.indexing.binary_backend import read_codes, write_codes

        write_codes(stage, np.delete(read_codes(root), gone, axis=0))
        return True
    index = read_faiss(root)
    if removal(index) is None and not rebuild:
        return False
    faiss.write_index(without(index, manifest, gone), str(stage / FaissBackend.FILE))
    return True


def without(index: faiss.Index, manifest: Manifest, gone: np.ndarray) -> faiss.Index:
    """`index` less the labels `gone` (sorted), survivors renumbered 0..n-1 in order; a kind
    that cannot remove vectors is rebuilt from its survivors."""
    how = removal(index)
    if how is None:
        return rebuilt(index, manifest, reconstruct(index, np.setdiff1d(np.arange(index.ntotal), gone)))
    index.remove_ids(faiss.IDSelectorBatch(gone))
    if how == "ivf":
        renumber_ivf(index, gone)
    return index


def rebuilt(index: faiss.Index, manifest: Manifest, vectors: np.ndarray) -> faiss.Index:
    """The index `vectors` would give: a fresh build when the kind learns nothing from the data
    (HNSW-Flat: exactly a rebuild), else the trained parts (PQ codebooks) refilled."""
    fresh = faiss.index_factory(manifest.dim, manifest.factory, faiss.METRIC_INNER_PRODUCT)
    return build_faiss_index(vectors, manifest.factory) if fresh.is_trained else refilled(index, vectors)


def add_vectors(root: Path, stage: Path, manifest: Manifest, vectors: np.ndarray) -> None:
    """Append `vectors` with the next labels; tombstones (if any) carry over."""
    if manifest.backend in ("binary", "bebr"):
        from tessera.indexing.binary_backend import SignBinaryBackend, read_codes, write_codes

        if manifest.backend == "binary":
            codes = SignBinaryBackend.binarize(vectors)
        else:
            from tessera.models.bebr import RecurrentBinarizer

            codes = RecurrentBinarizer.load(root).eval().encode(vectors)
        write_codes(stage, np.concatenate([read_codes(root), codes]))
        return
    index = read_faiss(root)
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    faiss.write_index(index, str(stage / FaissBackend.FILE))


def reconstruct(index: faiss.Index, labels: np.ndarray) -> np.ndarray:
    out = np.empty((len(labels), index.d), dtype=np.float32)
    for start in range(0, len(labels), 65_536):
        out[start : start + 65_536] = index.reconstruct_batch(labels[start : start + 65_536])
    return out


def refilled(index: faiss.Index, vectors: np.ndarray) -> faiss.Index:
    """A copy of a trained index emptied and filled with `vectors` again."""
    fresh = faiss.clone_index(index)
    fresh.reset()
    fresh.add(vectors)
    return fresh
