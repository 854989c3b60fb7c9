"""Stored document token vectors for ColBERT's exact MaxSim: float16, or ColBERTv2 residuals.

`float16` keeps every vector (256 bytes per 128-d token). `residual:BITS` keeps, per token, the
id of its nearest k-means centroid (int32) and its residual (vector minus centroid) quantized to
BITS bits per dimension, with bucket boundaries at quantiles of all residual values (ColBERTv2,
Santhanam et al. 2022); decoding adds the bucket values to the centroid and renormalizes. At
2 bits a 128-d token takes 4 + 32 bytes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import faiss
import numpy as np

from tessera.errors import IndexFormatError, TesseraError
from tessera.indexing.faiss_backend import gpu_count, sample_rows

CHUNK = 65_536  # tokens converted per step, so big corpora stream through memory


class StoredTokens(Protocol):
    """Float32 rows of the stored token vectors at the given token positions."""

    def __len__(self) -> int: ...

    def rows(self, positions: np.ndarray) -> np.ndarray: ...


def parse_doc_vectors(option: str, dim: int) -> int:
    """Bits per dimension of a `residual:BITS` option; 0 for `float16`."""
    if option == "float16":
        return 0
    kind, _, bits = option.partition(":")
    if kind != "residual" or bits not in ("1", "2", "4", "8"):
        raise TesseraError(
            f"'{option}': expected float16 or residual:BITS with BITS 1, 2, 4 or 8", field="doc_vectors"
        )
    return int(bits)


def _load(path: Path) -> np.ndarray:
    if not path.is_file():
        raise IndexFormatError("token index file is missing", file=path)
    return np.load(path, mmap_mode="r", allow_pickle=False)


def _write_chunks(path: Path, shape: tuple[int, ...], dtype, chunks) -> None:
    """Write an .npy file chunk by chunk (memory stays bounded by one chunk)."""
    out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    start = 0
    for chunk in chunks:
        out[start : start + len(chunk)] = chunk
        start += len(chunk)
    out.flush()
    del out


class Float16Tokens:
    FILE = "token_vectors.npy"

    def __init__(self, vectors: np.ndarray):
        self.vectors = vectors

    @classmethod
    def build(cls, root: Path, vectors: np.ndarray) -> None:
        chunks = (vectors[s : s + CHUNK].astype(np.float16) for s in range(0, len(vectors), CHUNK))
        _write_chunks(root / cls.FILE, vectors.shape, np.float16, chunks)

    @classmethod
    def load(cls, root: Path) -> Float16Tokens:
        return cls(_load(root / cls.FILE))

    def __len__(self) -> int:
        return len(self.vectors)

    def rows(self, positions: np.ndarray) -> np.ndarray:
        return self.vectors[positions].astype(np.float32)


def centroid_count(tokens: int) -> int:
    """A power of two near 4 * sqrt(tokens), as ColBERTv2 sizes its codebook (smaller here)."""
    return int(min(65_536, tokens, max(16, 2 ** round(np.log2(4 * np.sqrt(max(tokens, 1)))))))


class ResidualTokens:
    CENTROIDS, CODES, PACKED, WEIGHTS, CUTOFFS = (
        "residual_centroids.npy",
        "residual_codes.npy",
        "residual_packed.npy",
        "residual_weights.npy",
        "residual_cutoffs.npy",  # bucket boundaries: what encodes tokens added later
    )

    def __init__(self, centroids: np.ndarray, codes: np.ndarray, packed: np.ndarray, weights: np.ndarray):
        self.centroids = np.asarray(centroids, dtype=np.float32)
        self.codes, self.packed = codes, packed
        self.weights = np.asarray(weights, dtype=np.float32)
        self.bits = int(np.log2(len(self.weights)))
        self.dim = self.centroids.shape[1]
        # byte value -> the residual values of the 8/bits dimensions it packs (most significant first)
        per_byte, mask = 8 // self.bits, 2**self.bits - 1
        shifts = 8 - self.bits * (np.arange(per_byte) + 1)
        self.table = self.weights[(np.arange(256)[:, None] >> shifts) & mask]

    @classmethod
    def build(cls, root: Path, vectors: np.ndarray, bits: int, seed: int = 0) -> None:
        """Train centroids and buckets on a sample, then encode every token chunk by chunk."""
        count, dim = vectors.shape
        sample = np.ascontiguousarray(vectors[sample_rows(count, seed)], dtype=np.float32)
        kmeans = faiss.Kmeans(  # sized by design below faiss' 39 points a centroid, which it warns of
            dim,
            centroid_count(count),
            niter=20,
            seed=seed,
            spherical=True,
            gpu=gpu_count() > 0,
            min_points_per_centroid=1,
        )
        kmeans.train(sample)
        nearest = faiss.IndexFlatIP(dim)
        nearest.add(kmeans.centroids)
        residuals = sample - kmeans.centroids[nearest.search(sample, 1)[1][:, 0]]
        levels = 2**bits
        cutoffs = np.quantile(residuals, np.arange(1, levels) / levels).astype(np.float32)
        weights = np.quantile(residuals, (np.arange(levels) + 0.5) / levels).astype(np.float32)
        np.save(root / cls.CENTROIDS, kmeans.centroids.astype(np.float32), allow_pickle=False)
        np.save(root / cls.WEIGHTS, weights, allow_pickle=False)
        np.save(root / cls.CUTOFFS, cutoffs, allow_pickle=False)
        encoded = [
            _encode(np.ascontiguousarray(vectors[s : s + CHUNK], dtype=np.float32), nearest, cutoffs, bits)
            for s in range(0, count, CHUNK)
        ]
        _write_chunks(root / cls.CODES, (count,), np.int32, (codes for codes, _ in encoded))
        _write_chunks(root / cls.PACKED, (count, dim * bits // 8), np.uint8, (p for _, p in encoded))

    @classmethod
    def encode_more(cls, root: Path, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Centroid ids and packed residuals of new token vectors, with the index's own
        codebook and buckets (what `build` would have written for them)."""
        if not (root / cls.CUTOFFS).is_file():
            raise IndexFormatError(
                f"built before residual token indexes could take new documents (no {cls.CUTOFFS}); "
                "rebuild it with `tessera index`",
                file=root,
            )
        centroids = np.asarray(_load(root / cls.CENTROIDS), dtype=np.float32)
        cutoffs = np.asarray(_load(root / cls.CUTOFFS), dtype=np.float32)
        nearest = faiss.IndexFlatIP(centroids.shape[1])
        nearest.add(centroids)
        bits = int(np.log2(len(cutoffs) + 1))
        encoded = [
            _encode(np.ascontiguousarray(vectors[s : s + CHUNK], dtype=np.float32), nearest, cutoffs, bits)
            for s in range(0, len(vectors), CHUNK)
        ]
        width = centroids.shape[1] * bits // 8
        if not encoded:
            return np.zeros(0, np.int32), np.zeros((0, width), np.uint8)
        return np.concatenate([c for c, _ in encoded]), np.concatenate([p for _, p in encoded])

    @classmethod
    def load(cls, root: Path) -> ResidualTokens:
        return cls(*(_load(root / name) for name in (cls.CENTROIDS, cls.CODES, cls.PACKED, cls.WEIGHTS)))

    def __len__(self) -> int:
        return len(self.codes)

    def rows(self, positions: np.ndarray) -> np.ndarray:
        residuals = self.table[np.asarray(self.packed[positions])].reshape(len(positions), self.dim)
        vectors = self.centroids[np.asarray(self.codes[positions])]
        vectors += residuals
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors


def _encode(
    chunk: np.ndarray, nearest: faiss.Index, cutoffs: np.ndarray, bits: int
) -> tuple[np.ndarray, np.ndarray]:
    """Centroid ids and packed residual buckets (most significant bit first) of one chunk."""
    codes = nearest.search(chunk, 1)[1][:, 0]
    centroids = nearest.reconstruct_n(0, nearest.ntotal)
    buckets = np.searchsorted(cutoffs, chunk - centroids[codes]).astype(np.uint8)
    planes = (buckets[..., None] >> np.arange(bits - 1, -1, -1, dtype=np.uint8)) & 1
    return codes.astype(np.int32), np.packbits(planes.reshape(len(chunk), -1), axis=1)


def build_stored_tokens(root: Path, vectors: np.ndarray, bits: int) -> None:
    if bits:
        ResidualTokens.build(root, vectors, bits)
    else:
        Float16Tokens.build(root, vectors)


def edit_stored_tokens(
    root: Path, stage: Path, keep: np.ndarray | None = None, added: np.ndarray | None = None
) -> None:
    """Write `root`'s stored token vectors into `stage` without the rows where `keep` is False
    and with the float32 rows `added` appended, in the representation the index has."""
    if (root / ResidualTokens.CODES).is_file():
        codes, packed = (None, None) if added is None else ResidualTokens.encode_more(root, added)
        _copy_rows(root / ResidualTokens.CODES, stage / ResidualTokens.CODES, keep, codes)
        _copy_rows(root / ResidualTokens.PACKED, stage / ResidualTokens.PACKED, keep, packed)
    else:
        extra = None if added is None else added.astype(np.float16)
        _copy_rows(root / Float16Tokens.FILE, stage / Float16Tokens.FILE, keep, extra)


def _copy_rows(source: Path, target: Path, keep: np.ndarray | None, added: np.ndarray | None) -> None:
    """An .npy file's rows where `keep`, then `added`, written chunk by chunk."""
    old = _load(source)
    kept = len(old) if keep is None else int(np.count_nonzero(keep))

    def chunks():
        for start in range(0, len(old), CHUNK):
            rows = np.asarray(old[start : start + CHUNK])
            yield rows if keep is None else rows[keep[start : start + CHUNK]]
        if added is not None:
            yield added

    _write_chunks(target, (kept + (0 if added is None else len(added)), *old.shape[1:]), old.dtype, chunks())


def load_stored_tokens(root: Path) -> StoredTokens:
    """Whichever representation the build wrote (the files say which)."""
    if (root / ResidualTokens.CODES).is_file():
        return ResidualTokens.load(root)
    return Float16Tokens.load(root)
