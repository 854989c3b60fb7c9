"""Edits of a token (ColBERT/XTR) index for `updates.py`: a document's token vectors appended
or removed everywhere they live (token_backend.py's files).

Token positions are the faiss labels and the rows of the stored vectors, so a deletion removes
the document's positions from both and renumbers the survivors in order (faiss kinds that
cannot remove vectors, HNSW, are rebuilt from the surviving token vectors: a token label cannot
carry a tombstone once the documents are renumbered). The token -> document map and the
offsets are rewritten from the surviving documents' token counts. Added tokens go to the end,
encoded by the trained parts the index already has (IVF lists, PQ and residual codebooks are
not retrained).
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from tessera.indexing.manifest import Manifest
from tessera.indexing.residual import Float16Tokens, ResidualTokens, edit_stored_tokens
from tessera.indexing.token_backend import OFFSETS, TOKEN_DOCS, TokenFaiss
from tessera.indexing.vector_edits import without

EDITED = (
    TokenFaiss.FILE,
    TOKEN_DOCS,
    OFFSETS,
    Float16Tokens.FILE,
    ResidualTokens.CODES,
    ResidualTokens.PACKED,
)  # what an edit rewrites; residual codebooks and buckets carry over unchanged


def add_doc_tokens(root: Path, stage: Path, vectors: np.ndarray, lengths: np.ndarray) -> None:
    """Append documents whose token vectors are `vectors`, `lengths[i]` rows for the i-th."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    index = _read(root)
    index.add(vectors)
    faiss.write_index(index, str(stage / TokenFaiss.FILE))
    _write_maps(stage, np.concatenate([_lengths(root), np.asarray(lengths, dtype=np.int64)]))
    edit_stored_tokens(root, stage, added=vectors)


def remove_doc_tokens(root: Path, stage: Path, manifest: Manifest, gone: np.ndarray) -> None:
    """Remove every token of the documents `gone` (sorted ordinals); survivors are renumbered."""
    lengths = _lengths(root)
    dead_docs = np.zeros(len(lengths), dtype=bool)
    dead_docs[gone] = True
    dead_tokens = np.repeat(dead_docs, lengths)
    index = without(_read(root), manifest, np.flatnonzero(dead_tokens).astype(np.int64))
    faiss.write_index(index, str(stage / TokenFaiss.FILE))
    _write_maps(stage, lengths[~dead_docs])
    edit_stored_tokens(root, stage, keep=~dead_tokens)


def _read(root: Path) -> faiss.Index:
    return faiss.read_index(str(root / TokenFaiss.FILE))


def _lengths(root: Path) -> np.ndarray:
    return np.diff(np.load(root / OFFSETS, allow_pickle=False)).astype(np.int64)


def _write_maps(stage: Path, lengths: np.ndarray) -> None:
    """token_docs.npy and doc_offsets.npy for documents 0..n-1 with these token counts."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    np.save(
        stage / TOKEN_DOCS, np.repeat(np.arange(len(lengths), dtype=np.int32), lengths), allow_pickle=False
    )
    np.save(stage / OFFSETS, offsets, allow_pickle=False)
