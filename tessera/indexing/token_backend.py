"""Token index for multi-vector encoders: every document token vector searchable in faiss.

| file | holds |
|---|---|
| `tokens.faiss` | faiss index (any factory string) over all token vectors; label = token position |
| `token_docs.npy` | int32, token position -> document ordinal (the docstore ordinal) |
| `doc_offsets.npy` | int64, doc_count + 1: document d owns positions offsets[d]:offsets[d+1] |
| `token_vectors.npy` or `residual_*.npy` | the full vectors ColBERT's exact MaxSim reads (residual.py) |

Token retrieval (faiss) serves both scorings; XTR needs only the first three files' answers,
ColBERT also reads the stored vectors of the candidate documents. The search-time knobs `mode`
and `k_prime` belong to late interaction; every other search parameter goes to faiss.
"""

from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np

from tessera.errors import CorpusError, IndexFormatError, TesseraError
from tessera.indexing.backends import Params, kind_of
from tessera.indexing.faiss_backend import FaissBackend, apply_search_params, build_faiss_index
from tessera.indexing.residual import build_stored_tokens, load_stored_tokens, parse_doc_vectors
from tessera.models.multivector import SCORINGS

TOKEN_DOCS, OFFSETS = "token_docs.npy", "doc_offsets.npy"
DEFAULT_K_PRIME = 1000  # document tokens each query token retrieves (XTR's k')
GPU_MAX_K = 2048  # faiss' GPU indexes return at most this many neighbours per query


class TokenFaiss(FaissBackend):
    """The faiss index of token vectors, stored under its own name."""

    FILE = "tokens.faiss"


def late_params(params: Params) -> tuple[str | None, int, Params]:
    """Split search parameters into (mode, k_prime, the rest for faiss); reject bad values."""
    rest = dict(params)
    mode = rest.pop("mode", None)
    if mode is not None and mode not in SCORINGS:
        raise TesseraError(f"mode must be one of {', '.join(SCORINGS)}, not '{mode}'", field="mode")
    k_prime = rest.pop("k_prime", DEFAULT_K_PRIME)
    try:
        valid = float(k_prime) >= 1 and float(k_prime) == int(float(k_prime))
    except (ValueError, OverflowError):
        valid = False
    if not valid:
        raise TesseraError(f"k_prime must be a positive whole number, not '{k_prime}'", field="k_prime")
    return mode, int(float(k_prime)), rest


def validate_token_factory(factory: str) -> None:
    if kind_of(factory) != "faiss":
        raise TesseraError(
            f"token indexes take a faiss factory string (Flat, IVF{{n}},PQ{{m}}, ...), not '{factory}'",
            field="index",
        )


def _fsync_append(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


class TokenSink:
    """Streams each batch's token vectors to partial files; a resume rewinds them to the checkpoint.

    Token vectors go to `tokens.f32.partial`, then each document's token count to
    `doclens.i32.partial`; the builder checkpoints only after both are durable, so the counts
    up to the checkpoint always describe a complete prefix of the vectors file.
    """

    TOKENS, LENGTHS = "tokens.f32.partial", "doclens.i32.partial"
    kind = "tokens"

    def __init__(self, dim: int, factory: str, params: Params, doc_vectors: str = "float16"):
        """Validates everything up front, so a bad option fails before any encoding."""
        validate_token_factory(factory)
        _, _, self.faiss_params = late_params(params)
        self.bits = parse_doc_vectors(doc_vectors, dim)
        self.dim, self.factory = dim, factory

    def _lengths(self, root: Path) -> np.ndarray:
        path = root / self.LENGTHS
        return np.fromfile(path, dtype=np.int32) if path.exists() else np.zeros(0, np.int32)

    def rewind(self, root: Path, done: int) -> None:
        """Drop what was written after the last checkpoint (a batch that was cut off)."""
        lengths = self._lengths(root)
        if len(lengths) < done:
            raise IndexFormatError(
                f"staging directory records {done} documents but token counts for {len(lengths)}; "
                "delete it to start over",
                file=root,
            )
        with (root / self.LENGTHS).open("ab") as handle:
            handle.truncate(done * 4)
        with (root / self.TOKENS).open("ab") as handle:
            handle.truncate(int(lengths[:done].sum()) * self.dim * 4)

    def append(self, root: Path, vectors: list[np.ndarray]) -> None:
        lengths = np.array([len(v) for v in vectors], dtype=np.int32)
        tokens = np.concatenate(vectors) if vectors else np.zeros((0, self.dim), np.float32)
        _fsync_append(root / self.TOKENS, tokens.astype(np.float32, copy=False).tobytes())
        _fsync_append(root / self.LENGTHS, lengths.tobytes())

    def finish(self, root: Path, count: int) -> None:
        """Build the token index files from the partials, then remove the partials."""
        lengths = self._lengths(root)[:count]
        offsets = np.zeros(count + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        if offsets[-1] == 0:
            raise CorpusError("the documents produced no token vectors")
        tokens = np.memmap(root / self.TOKENS, dtype=np.float32, mode="r", shape=(offsets[-1], self.dim))
        TokenFaiss(build_faiss_index(tokens, self.factory), self.faiss_params).save(root)
        np.save(root / TOKEN_DOCS, np.repeat(np.arange(count, dtype=np.int32), lengths))
        np.save(root / OFFSETS, offsets)
        build_stored_tokens(root, tokens, self.bits)
        del tokens
        (root / self.TOKENS).unlink()
        (root / self.LENGTHS).unlink()


def _load_array(path: Path, dtype, mmap: bool = False) -> np.ndarray:
    if not path.is_file():
        raise IndexFormatError("token index file is missing", file=path)
    array = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    if array.dtype != dtype or array.ndim != 1:
        raise IndexFormatError(f"expected a 1-d {np.dtype(dtype)} array, found {array.dtype}", file=path)
    return array


class TokenBackend:
    """Token retrieval and per-document token vectors of a token index directory."""

    supports_remove = False

    def __init__(self, root: Path, faiss_params: Params | None = None, mmap: bool = False):
        """`mmap`: map tokens.faiss and the token -> document map too (the stored token vectors
        always are), as `Index.load(mmap=True)` maps a single-vector index."""
        self.faiss = TokenFaiss.load(root, faiss_params, mmap)
        self.faiss_params = dict(faiss_params or {})
        self.token_docs = _load_array(root / TOKEN_DOCS, np.int32, mmap)
        self.offsets = _load_array(root / OFFSETS, np.int64)
        self.stored = load_stored_tokens(root)
        counts = {
            "tokens.faiss": self.faiss.ntotal,
            TOKEN_DOCS: len(self.token_docs),
            OFFSETS: int(self.offsets[-1]) if len(self.offsets) else -1,
            "stored vectors": len(self.stored),
        }
        if len(set(counts.values())) != 1 or np.any(np.diff(self.offsets) < 0):
            raise IndexFormatError(f"token files disagree on the token count: {counts}", file=root)
        self.dim, self.on_gpu = self.faiss.dim, self.faiss.on_gpu
        self._cpu: TokenFaiss | None = None

    @property
    def doc_count(self) -> int:
        return len(self.offsets) - 1

    @property
    def token_count(self) -> int:
        return len(self.token_docs)

    def search_tokens(self, queries: np.ndarray, k_prime: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-`k_prime` document tokens per query token: (scores, token positions; -1 = none)."""
        if self.on_gpu and min(k_prime, self.token_count) > GPU_MAX_K:
            # faiss' GPU search stops at 2048 neighbours; larger k' runs on a CPU copy, made once.
            if self._cpu is None:
                self._cpu = faiss.index_gpu_to_cpu(self.faiss.index)
                apply_search_params(self._cpu, self.faiss_params)
            queries = np.ascontiguousarray(queries, dtype=np.float32)
            return self._cpu.search(queries, min(k_prime, self.token_count))
        return self.faiss.search(queries, k_prime)

    def docs_of(self, positions: np.ndarray) -> np.ndarray:
        """Document ordinal of each token position (-1 stays -1)."""
        return np.where(positions >= 0, self.token_docs[np.maximum(positions, 0)], -1)

    def doc_tokens(self, ordinals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All token vectors of the given documents, concatenated in that order, and their counts."""
        ordinals = np.asarray(ordinals, dtype=np.int64)
        starts, lengths = self.offsets[ordinals], self.offsets[ordinals + 1] - self.offsets[ordinals]
        total = int(lengths.sum())
        shift = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        return self.stored.rows(shift + np.arange(total)), lengths
