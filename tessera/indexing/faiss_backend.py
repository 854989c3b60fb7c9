"""Vector indexes of any faiss factory string; on a GPU whenever faiss sees one.

The same code path serves CPU-only and GPU machines: with `faiss.get_num_gpus() > 0` the
index is trained and filled on the GPU(s), saved from a CPU copy, and searched on the GPU.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import faiss
import numpy as np

from tessera.errors import EncoderError, TesseraError
from tessera.indexing.faiss_training import one_clustering_warning, skip_polysemous_training
from tessera.indexing.search_params import check_params

log = logging.getLogger(__name__)

METRICS = {"ip": faiss.METRIC_INNER_PRODUCT, "l2": faiss.METRIC_L2}
TRAIN_SAMPLE = 262_144  # rows sampled to train quantizers; plenty for k-means with <= 65k centroids
ADD_CHUNK = 65_536
WIDEN_MAX = 16.0  # a filtered search visits at most this many times what an unfiltered one does


def gpu_count() -> int:
    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


def _to_gpu(index: faiss.Index) -> faiss.Index | None:
    """A GPU clone of `index`, or None when there is no GPU or faiss has no GPU version of it."""
    if gpu_count() == 0:
        return None
    try:
        return faiss.index_cpu_to_all_gpus(index)
    except (RuntimeError, AttributeError) as exc:  # e.g. HNSW has no GPU implementation
        log.info("faiss index stays on the CPU: %s", exc)
        return None


def apply_search_params(index: faiss.Index, params: dict[str, float]) -> None:
    """Set nprobe, efSearch, ... through faiss' own ParameterSpace (works on wrapped indexes)."""
    check_params(params)
    space = (
        faiss.GpuParameterSpace() if gpu_count() and "Gpu" in type(index).__name__ else faiss.ParameterSpace()
    )
    for name, value in params.items():
        if isinstance(value, (str, bool)):  # faiss would raise a TypeError deep inside SWIG
            why = f"search parameter '{name}' takes a number, got {value!r}"
            raise TesseraError(why, field="search_params")
        try:
            space.set_index_parameter(index, name, value)
        except RuntimeError:  # faiss says only "could not set parameter", after its C++ location
            kind = type(faiss.downcast_index(index)).__name__
            raise TesseraError(
                f"search parameter '{name}' does not apply to this index (a faiss {kind}; IVF kinds take "
                "nprobe, HNSW kinds efSearch)",
                field="search_params",
            ) from None


def selector_params(
    index: faiss.Index, selector: faiss.IDSelector, widen: float = 1.0
) -> faiss.SearchParameters | None:
    """Search parameters restricting `index` to `selector`, carrying the index's own settings
    (given parameters replace the index's: an IVF would probe 1 list, not its nprobe), with an
    HNSW's efSearch and an IVF's nprobe multiplied by `widen`: a walk or a probe that keeps a
    share s of what it visits must visit 1/s as much to find as many. None for kinds faiss
    cannot restrict (PQ, fast-scan and RaBitQ IVF, ...)."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexPreTransform):  # OPQ, PCA: the parameters go to the inner index
        return selector_params(index.index, selector, widen)
    if isinstance(index, faiss.IndexRefine):
        base = selector_params(index.base_index, selector, widen)
        return base and faiss.IndexRefineSearchParameters(k_factor=index.k_factor, base_index_params=base)
    if isinstance(index, (faiss.IndexIVFFastScan, faiss.IndexIVFRaBitQ)):
        return None
    if isinstance(index, faiss.IndexIVF):
        nprobe = min(index.nlist, math.ceil(index.nprobe * widen))
        return faiss.SearchParametersIVF(sel=selector, nprobe=nprobe, max_codes=index.max_codes)
    if isinstance(index, faiss.IndexHNSW):
        return faiss.SearchParametersHNSW(sel=selector, efSearch=math.ceil(index.hnsw.efSearch * widen))
    if isinstance(index, (faiss.IndexFlat, faiss.IndexScalarQuantizer)):
        return faiss.SearchParameters(sel=selector)
    return None


FACTORY_SYNTAX = "e.g. Flat, HNSW32, IVF256,Flat, PQ48, OPQ48,PQ48, IVF256,PQ48, SQ8; or binary, bebr:2"


def factory_problem(dim: int, factory: str) -> str | None:
    """What faiss would crash on, or answer in its C++ words, about a factory string; None if
    nothing is seen (faiss parses it then)."""
    if factory != factory.strip() or not factory:
        return "has no kind or spaces around it"
    if re.search(r"(^|,)IDMap", factory):
        return "Tessera numbers the vectors itself: leave out IDMap"
    if re.search(r"(^|,)IVF0+(\D|$)", factory):
        return "an IVF index needs at least one list"
    if any(int(m) < 2 for m in re.findall(r"HNSW(\d+)", factory)):  # faiss aborts or segfaults
        return "an HNSW graph needs at least 2 links a node (HNSW32 is usual)"
    for quantizer, m in re.findall(r"(?:^|,)(?:IVF\d+,)?(PQ)(\d+)", factory):
        if int(m) and dim % int(m):
            parts = ", ".join(str(d) for d in range(4, min(dim, 96) + 1) if dim % d == 0)
            return f"{quantizer}{m} cuts the {dim} dimensions into {m} parts: m must divide {dim} ({parts})"
    return None


def faiss_words(exc: RuntimeError) -> str:
    """faiss' own explanation in an error, without the C++ location and assertion before it."""
    said = str(exc).strip().splitlines()[-1]
    said = re.sub(r"^Error in .*? at \S+:\d+: ", "", said)  # the C++ function and source line
    return said.split(" failed: ", 1)[-1] if " failed: " in said else said


def create_index(dim: int, factory: str, metric: str = "ip") -> faiss.Index:
    """An empty index of `factory` (polysemous training off), or a clear error."""
    if problem := factory_problem(dim, factory):
        raise TesseraError(f"'{factory}': {problem}", field="index")
    try:
        index = faiss.index_factory(dim, factory, METRICS[metric])
    except RuntimeError as exc:
        said = faiss_words(exc)
        if "could not parse" in said:
            said = f"not a faiss index factory string ({FACTORY_SYNTAX})"
        raise TesseraError(f"faiss cannot build '{factory}': {said}", field="index") from None
    skip_polysemous_training(index)
    return index


def train_index(index: faiss.Index, sample: np.ndarray, factory: str) -> None:
    """Train `index` (CPU or GPU) on `sample` rows, turning faiss' errors into Tessera's."""
    rotations = [part for part in factory.split(",") if part.strip().startswith("OPQ")]
    if rotations and len(sample) < index.d:  # faiss 1.15 corrupts its heap there (munmap_chunk)
        raise TesseraError(
            f"faiss cannot train '{factory}' on {len(sample)} vectors: {rotations[0]} learns a "
            f"rotation of all {index.d} dimensions and needs at least {index.d} of them",
            field="index",
        )
    try:
        with one_clustering_warning(index, len(sample), factory):
            index.train(np.ascontiguousarray(sample, dtype=np.float32))
    except RuntimeError as exc:
        said = faiss_words(exc)
        if "PQ" in factory and "number of clusters (256)" in said:  # not the IVF lists asked for
            said += "; PQ's codebooks hold 256 codes (8 bits); one of 4 bits (e.g. PQ16x4) takes 16"
        raise TesseraError(
            f"faiss could not train '{factory}' on {len(sample)} vectors: {said}", field="index"
        ) from None


def sample_rows(count: int, seed: int = 0) -> np.ndarray:
    """The sorted row numbers quantizers are trained on: all rows, or TRAIN_SAMPLE seeded ones."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(count, size=min(count, TRAIN_SAMPLE), replace=False))


def build_faiss_index(vectors: np.ndarray, factory: str, metric: str = "ip", seed: int = 0) -> faiss.Index:
    """Create, train on a sample when needed, and fill a faiss index; returns a CPU index."""
    count, dim = vectors.shape
    index = create_index(dim, factory, metric)
    working = _to_gpu(index) or index
    if not working.is_trained:
        train_index(working, vectors[sample_rows(count, seed)], factory)
    for start in range(0, count, ADD_CHUNK):
        working.add(np.ascontiguousarray(vectors[start : start + ADD_CHUNK], dtype=np.float32))
    return faiss.index_gpu_to_cpu(working) if working is not index else index


def read_faiss(path: Path, mmap: bool = False) -> faiss.Index:
    """A faiss index file, read into memory or memory-mapped (`mmap`).

    Mapped (faiss' IO_FLAG_MMAP_IFC), flat and SQ/PQ codes, graphs and exact re-scoring rows stay
    in the file (IVF lists of RaBitQ codes are still copied): pages are read when a search
    touches them and are the kernel's to evict, and processes that map one file share one copy
    (docs/scaling.md: 10M rows, 0.64 GiB private instead of 4.3). Results are identical
    (tests/retrieval/test_index_mmap.py); the index is read-only, which search is (updates read
    their own copy, indexing/vector_edits.py)."""
    return faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC if mmap else 0)


class FaissBackend:
    """A faiss index on disk as `vectors.faiss`; labels are docstore ordinals."""

    FILE = "vectors.faiss"
    supports_remove = False

    def __init__(self, index: faiss.Index, search_params: dict[str, float] | None = None):
        self.dim = index.d
        gpu = _to_gpu(index)
        self.on_gpu = gpu is not None
        self.index = gpu or index
        self.search_params = dict(search_params or {})
        self.tuning: dict = {}  # set by the builder when the defaults were tuned (indexing/tuning.py)
        apply_search_params(self.index, self.search_params)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def exact_vectors(self) -> np.ndarray:
        """The stored float vectors, for indexes that keep them exactly (Flat, HNSW-Flat)."""
        index = faiss.index_gpu_to_cpu(self.index) if self.on_gpu else self.index
        if not isinstance(index, (faiss.IndexFlat, faiss.IndexHNSWFlat)):
            raise TesseraError(
                f"reindex reads the vectors of Flat and HNSW indexes, not of {type(index).__name__}: "
                "index the corpus again (`tessera index`)",
                field="factory",
            )
        return index.reconstruct_n(0, index.ntotal)

    def vectors_of(self, labels: np.ndarray) -> np.ndarray:
        """The stored vectors of `labels` (any shape; -1 gives zeros): exact for Flat, HNSW and
        IVF-Flat, decoded codes for PQ kinds. An IVF index gets its direct map on first use."""
        flat = np.asarray(labels, dtype=np.int64).reshape(-1)
        found = flat >= 0
        out = np.zeros((flat.size, self.dim), dtype=np.float32)
        if found.any():
            try:
                out[found] = self._reconstruct(flat[found])
            except RuntimeError as exc:
                why = str(exc).strip().splitlines()[-1]
                kind = type(self.index).__name__
                raise TesseraError(
                    f"{kind} cannot return stored vectors: {why}", field="search_params"
                ) from None
        return out.reshape(*np.shape(labels), self.dim)

    def _reconstruct(self, labels: np.ndarray) -> np.ndarray:
        try:
            return self.index.reconstruct_batch(labels)
        except RuntimeError:
            ivf = faiss.try_extract_index_ivf(self.index)
            if ivf is None or ivf.direct_map.type != faiss.DirectMap.NoMap:
                raise
            ivf.make_direct_map()
            return self.index.reconstruct_batch(labels)

    @classmethod
    def load(
        cls, root: Path, search_params: dict[str, float] | None = None, mmap: bool = False
    ) -> FaissBackend:
        return cls(read_faiss(root / cls.FILE, mmap), search_params)

    def save(self, root: Path) -> None:
        index = faiss.index_gpu_to_cpu(self.index) if self.on_gpu else self.index
        faiss.write_index(index, str(root / self.FILE))

    def search_within(
        self, queries: np.ndarray, k: int, labels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """`search` among `labels` only, by faiss' IDSelector: an HNSW walk passes through the other
        vectors without returning them, an IVF scans its lists for allowed ones; efSearch and
        nprobe grow by the inverse of the share of vectors allowed (at most `WIDEN_MAX` times).
        None for kinds faiss cannot restrict, and on a GPU."""
        selector = faiss.IDSelectorBatch(np.ascontiguousarray(labels, dtype=np.int64))
        widen = min(WIDEN_MAX, self.index.ntotal / max(1, len(labels)))
        params = None if self.on_gpu else selector_params(self.index, selector, widen)
        if params is None:
            return None
        k = min(k, self.index.ntotal)
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k, params=params)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise EncoderError(
                f"dimension mismatch: index holds {self.dim}-d vectors, queries are {queries.shape[-1]}-d",
                field="dim",
            )
        k = min(k, self.index.ntotal)
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
