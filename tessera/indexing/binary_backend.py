"""Search over binary codes instead of float vectors: plain sign bits, or BEBR codes.

Both backends keep the codes in `codes.faiss` (a faiss IndexBinaryFlat) and never a float
vector of a document. Scores:

- Hamming search: `bits - 2 * hamming`, the inner product of the codes read as +-1 vectors
  (for sign bits of a d-dim vector, bits = d).
- BEBR rescoring and SDC: the inner product of the decoded, binarized query and document
  (`RecurrentBinarizer.decode`), computed as a sum of per-chunk table look-ups.

SDC (Symmetric Distance Calculation, from the BEBR paper): the query is binarized too, so for each
chunk of dimensions its contribution is one entry of a table indexed by the query's and the
document's chunk codes. A faiss product quantizer whose centroids are the chunk
reconstructions, holding the packed codes as its sub-codes and searched with the decoded
query, performs exactly those look-ups. With 4-bit chunks (u = 1, 2 or 4 bits per dimension)
faiss' SIMD "fast scan" scans with 8-bit quantized tables held in registers; the best
`REFINE_FACTOR * k` are then re-scored with exact float tables, so the returned scores are
exact (the top k too, unless table rounding, ~1e-3, outweighs the gap to rank 2k). With
u = 3 the chunks are 6-bit and scanned exactly, which is much slower. On a GPU (faiss sees
one) the look-ups run as an IVF-PQ with a single list, where faiss supports the code size.
- ADC (`mode=adc`, asymmetric): the same tables and look-ups, but the query is not binarized:
  its code-space reconstruction is exact (`RecurrentBinarizer.query_space`), so only the
  documents' bits are lost, and no binarizer MLP runs per query. The default at 1 bit, SDC at
  more (`search_params.bebr_default_mode`): on every judged query of four collections, seed means of three ITQ
  starts, ADC kept more of flat's nDCG@10 at 1 bit on all four (+0.003 to +0.031; chosen on
  Cranfield and CISI, 3.1 and 2.5 SE, confirmed on MEDLINE and LISA), and was level at 2 and 4
  bits (docs/results.md section 37).

Measured, one thread, 100k codes of 384 dims, k = 10 (ms per query, query encoding aside):
SDC 0.21 / 0.44 / 0.79 for u = 1 / 2 / 4, Hamming 0.37 / 0.52 / 0.48, Hamming + rescoring
of 400 candidates 1.5 / 4.6 / 4.2, SDC with exact 8-bit table scans (no fast scan) 2.7 / 6.0
/ 13 (numpy gathers: 6-15x slower again, on 1400 codes). u = 3: SDC 40.
"""

from __future__ import annotations

import logging
from pathlib import Path

import faiss
import numpy as np

from tessera.errors import EncoderError, IndexFormatError, TesseraError
from tessera.indexing.faiss_backend import gpu_count
from tessera.indexing.search_params import bebr_default_mode
from tessera.models.bebr import RecurrentBinarizer

log = logging.getLogger(__name__)

CODES = "codes.faiss"
MODES = ("sdc", "adc", "hamming")


REFINE_FACTOR = 2  # fast-scan candidates re-scored per result; 2 recovered every exact top-k tried
RESCORE_BLOCK = 1 << 24  # floats of decoded candidates held at once while rescoring


def _check_queries(queries: np.ndarray, dim: int) -> np.ndarray:
    if queries.ndim != 2 or queries.shape[1] != dim:
        raise EncoderError(
            f"dimension mismatch: index holds {dim}-d vectors, queries are {queries.shape[-1]}-d",
            field="dim",
        )
    return np.ascontiguousarray(queries, dtype=np.float32)


def _binary_index(codes: np.ndarray) -> faiss.IndexBinaryFlat:
    index = faiss.IndexBinaryFlat(codes.shape[1] * 8)
    index.add(np.ascontiguousarray(codes))
    return index


def _on_gpu(index: faiss.Index | faiss.IndexBinary) -> faiss.Index | faiss.IndexBinary | None:
    """A GPU clone of `index`, or None when there is no GPU or faiss cannot move this index."""
    if gpu_count() == 0:
        return None
    try:
        return faiss.index_cpu_to_all_gpus(index)
    except (RuntimeError, AttributeError) as exc:
        log.info("binary index stays on the CPU: %s", exc)
        return None


def write_codes(root: Path, codes: np.ndarray) -> None:
    faiss.write_index_binary(_binary_index(codes), str(root / CODES))


def read_codes(root: Path) -> np.ndarray:
    path = root / CODES
    if not path.is_file():
        raise IndexFormatError("binary codes are missing", file=path)
    try:
        index = faiss.read_index_binary(str(path))
    except RuntimeError as exc:
        raise IndexFormatError(
            f"cannot read binary codes: {str(exc).strip().splitlines()[-1]}", file=path
        ) from None
    return faiss.vector_to_array(index.xb).reshape(index.ntotal, index.code_size)


def hamming_search(index: faiss.IndexBinary, codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top k by Hamming distance, scored as the inner product of +-1 codes."""
    distances, labels = index.search(np.ascontiguousarray(codes), k)
    return (index.d - 2 * distances).astype(np.float32), labels.astype(np.int64)


class SignBinaryBackend:
    """One sign bit per dimension (x >= 0 -> 1), bit j of the little-endian stream is dimension j."""

    FILE = CODES
    supports_remove = False

    def __init__(self, codes: np.ndarray, dim: int):
        if codes.dtype != np.uint8 or codes.ndim != 2 or codes.shape[1] * 8 != dim:
            raise TesseraError(f"sign codes of {dim}-d vectors must be uint8 [n, {dim // 8}]", field="codes")
        self.dim = dim
        self.codes = codes
        cpu = _binary_index(codes)
        gpu = _on_gpu(cpu)
        self.on_gpu = gpu is not None
        self.index = gpu or cpu

    @staticmethod
    def binarize(vectors: np.ndarray) -> np.ndarray:
        if vectors.ndim != 2 or vectors.shape[1] % 8:
            raise TesseraError("sign binarization needs [n, d] vectors with d a multiple of 8", field="dim")
        return np.packbits(vectors >= 0, axis=1, bitorder="little")

    @classmethod
    def build(cls, vectors: np.ndarray) -> SignBinaryBackend:
        return cls(cls.binarize(vectors), vectors.shape[1])

    @classmethod
    def load(cls, root: Path) -> SignBinaryBackend:
        codes = read_codes(root)
        return cls(codes, codes.shape[1] * 8)

    @property
    def ntotal(self) -> int:
        return len(self.codes)

    def save(self, root: Path) -> None:
        write_codes(root, self.codes)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = _check_queries(queries, self.dim)
        return hamming_search(self.index, self.binarize(queries), min(k, len(self.codes)))


def sdc_chunk_dims(bits: int) -> int:
    """4-bit chunks where u divides 4 (fast scan), else the widest chunk within a byte."""
    return 4 // bits if 4 % bits == 0 else 8 // bits


def sdc_index(binarizer: RecurrentBinarizer, codes: np.ndarray) -> faiss.Index:
    """A CPU faiss index whose inner-product search is SDC over `codes` (exact scores)."""
    chunk = sdc_chunk_dims(binarizer.bits)
    tables = binarizer.chunk_tables(chunk)
    exact = faiss.IndexPQ(binarizer.dim, len(tables), chunk * binarizer.bits, faiss.METRIC_INNER_PRODUCT)
    faiss.copy_array_to_vector(tables.ravel(), exact.pq.centroids)
    exact.is_trained = True
    exact.add_sa_codes(np.ascontiguousarray(codes))
    if chunk * binarizer.bits != 4:
        return exact
    refined = faiss.IndexRefine(faiss.IndexPQFastScan(exact), exact)
    refined.k_factor = REFINE_FACTOR
    return refined


def sdc_gpu_source(binarizer: RecurrentBinarizer, codes: np.ndarray) -> faiss.IndexIVFPQ | None:
    """The SDC index in a form faiss can clone to a GPU (faiss has no GPU PQ scan, but IVF-PQ
    with one list centred at zero sums the same look-ups); 8-bit chunks only, None otherwise."""
    if 8 % binarizer.bits:
        return None
    dim, tables = binarizer.dim, binarizer.chunk_tables(8 // binarizer.bits)
    quantizer = faiss.IndexFlatIP(dim)
    quantizer.add(np.zeros((1, dim), dtype=np.float32))
    index = faiss.IndexIVFPQ(quantizer, dim, 1, len(tables), 8, faiss.METRIC_INNER_PRODUCT)
    faiss.copy_array_to_vector(tables.ravel(), index.pq.centroids)
    index.is_trained = True
    ids = np.arange(len(codes), dtype=np.int64)
    index.invlists.add_entries(
        0, len(codes), faiss.swig_ptr(ids), faiss.swig_ptr(np.ascontiguousarray(codes))
    )
    index.ntotal = len(codes)
    return index


class BebrBackend:
    """BEBR codes of a RecurrentBinarizer; searched by ADC, SDC or Hamming (+ optional rescoring).

    Files: `codes.faiss` (the packed codes), `binarizer.safetensors` and `binarizer.json`."""

    FILE = CODES
    supports_remove = False

    QUERY_BINARIZER = "query_binarizer"  # folder: a compatible successor binarizing queries (SDC, Hamming)

    def __init__(
        self,
        binarizer: RecurrentBinarizer,
        codes: np.ndarray,
        mode: str | None = None,
        rescore: int = 0,
        query_binarizer: RecurrentBinarizer | None = None,
    ):
        mode = mode or bebr_default_mode(binarizer.bits)
        if mode not in MODES:
            raise TesseraError(f"unknown search mode '{mode}' (known: {', '.join(MODES)})", field="mode")
        if rescore < 0 or (rescore and mode != "hamming"):
            raise TesseraError(
                "rescore takes a positive candidate count, in hamming mode only", field="rescore"
            )
        if codes.dtype != np.uint8 or codes.ndim != 2 or codes.shape[1] != binarizer.code_bytes:
            raise TesseraError(
                f"codes must be uint8 [n, {binarizer.code_bytes}], got {list(codes.shape)}",
                field="codes",
            )
        self.binarizer = binarizer.eval()
        self.query_binarizer = query_binarizer.eval() if query_binarizer is not None else None
        self.codes = np.ascontiguousarray(codes)
        self.dim = binarizer.dim
        self.mode = mode
        self.rescore = rescore
        self.index, self.on_gpu = self._search_index()

    def _search_index(self) -> tuple[faiss.Index | faiss.IndexBinary, bool]:
        if self.mode == "hamming":
            cpu = _binary_index(self.codes)
            gpu = _on_gpu(cpu)
        else:
            source = sdc_gpu_source(self.binarizer, self.codes) if gpu_count() else None
            gpu = _on_gpu(source) if source is not None else None
            cpu = None if gpu is not None else sdc_index(self.binarizer, self.codes)
        return (gpu or cpu), gpu is not None

    @classmethod
    def build(
        cls, binarizer: RecurrentBinarizer, vectors: np.ndarray, mode: str | None = None, rescore: int = 0
    ) -> BebrBackend:
        return cls(binarizer, binarizer.encode(vectors), mode, rescore)

    @classmethod
    def load(cls, root: Path, mode: str | None = None, rescore: int = 0) -> BebrBackend:
        successor = root / cls.QUERY_BINARIZER
        queries = RecurrentBinarizer.load(successor) if successor.is_dir() else None
        return cls(RecurrentBinarizer.load(root), read_codes(root), mode, rescore, queries)

    @property
    def ntotal(self) -> int:
        return len(self.codes)

    def save(self, root: Path) -> None:
        write_codes(root, self.codes)
        self.binarizer.save(root)
        if self.query_binarizer is not None:
            (root / self.QUERY_BINARIZER).mkdir(exist_ok=True)
            self.query_binarizer.save(root / self.QUERY_BINARIZER)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = _check_queries(queries, self.dim)
        if self.mode == "adc":
            return self._look_up(self.binarizer.query_space(queries), k)
        encoder = self.query_binarizer or self.binarizer
        return self.search_codes(encoder.encode(queries), k)

    def _look_up(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Table look-up scores of code-space queries (binarized and decoded, or float) against the codes."""
        scores, labels = self.index.search(queries, min(k, len(self.codes)))
        return scores, labels.astype(np.int64)

    def search_codes(self, query_codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Search with queries already binarized, e.g. by a newer, compatibly trained binarizer."""
        if (
            query_codes.dtype != np.uint8
            or query_codes.ndim != 2
            or query_codes.shape[1] != self.codes.shape[1]
        ):
            raise EncoderError(
                f"query codes must be uint8 [n, {self.codes.shape[1]}], got {list(query_codes.shape)}",
                field="codes",
            )
        k = min(k, len(self.codes))
        if self.mode != "hamming":  # binarized queries: SDC, whatever the mode
            return self._look_up(self.binarizer.code_space(query_codes), k)
        if not self.rescore:
            return hamming_search(self.index, query_codes, k)
        _, candidates = hamming_search(self.index, query_codes, min(max(self.rescore, k), len(self.codes)))
        return self._rescore(query_codes, candidates, k)

    def _rescore(
        self, query_codes: np.ndarray, candidates: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Decoded inner products of the Hamming candidates, best k kept (block by block of queries)."""
        queries = self.binarizer.code_space(query_codes)
        block = max(1, RESCORE_BLOCK // (candidates.shape[1] * self.dim))
        scores = np.empty((len(queries), k), dtype=np.float32)
        labels = np.empty((len(queries), k), dtype=np.int64)
        for start in range(0, len(queries), block):
            rows = candidates[start : start + block]
            docs = self.binarizer.code_space(self.codes[rows.ravel()]).reshape(*rows.shape, self.dim)
            exact = np.einsum("qd,qnd->qn", queries[start : start + block], docs)
            order = np.argsort(-exact, axis=1, kind="stable")[:, :k]
            scores[start : start + block] = np.take_along_axis(exact, order, axis=1)
            labels[start : start + block] = np.take_along_axis(rows, order, axis=1)
        return scores, labels
