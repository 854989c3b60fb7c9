"""Rebuild an index with another vector backend from its stored vectors, without re-encoding.

Encoding is the expensive part of indexing; trying PQ, OPQ, IVF or binary codes on the same
corpus only needs the float vectors an exact (Flat or HNSW) index already holds (a sharded
Flat index: its shards' vectors in label order). A token (ColBERT/XTR) index takes another
faiss kind over the same token vectors; its token maps and the stored vectors ColBERT's
MaxSim reads come over unchanged.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from tessera.data.readers import read_query_texts
from tessera.errors import TesseraError
from tessera.indexing import staging
from tessera.indexing.backends import Params, build_vector_backend, kind_of
from tessera.indexing.chunking import PASSAGES
from tessera.indexing.docstore import DocStore
from tessera.indexing.faiss_backend import FaissBackend, build_faiss_index
from tessera.indexing.manifest import Manifest
from tessera.indexing.sharded_backend import ShardedBackend
from tessera.indexing.token_backend import (
    OFFSETS,
    TOKEN_DOCS,
    TokenFaiss,
    late_params,
    validate_token_factory,
)
from tessera.models.registry import load_query_encoder


def reindex(
    source: str | Path,
    output: str | Path,
    factory: str,
    search_params: Params | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
    tune_queries: str | Path | None = None,
) -> Path:
    """Write `output`: the documents of `source` under the vector backend `factory`;
    `tune_queries` (.jsonl/.tsv) tunes IVF/HNSW defaults on those queries (indexing/tuning.py)."""
    src = Path(source).expanduser().resolve()
    target = staging.new_target(output, overwrite)
    manifest = Manifest.read(src)
    tune_texts = None if tune_queries is None else read_query_texts(tune_queries, "tune_queries")
    if manifest.backend == "tokens":
        if tune_texts is not None:
            raise TesseraError("token indexes are not tuned (k' sets their depth)", field="tune_queries")
        return _reindex_tokens(src, target, manifest, factory, dict(search_params or {}), overwrite)
    if manifest.backend not in ("faiss", "sharded"):
        raise TesseraError(
            f"a {manifest.backend} index keeps no float vectors to reindex", file=src, field="backend"
        )
    if manifest.tombstones:
        raise TesseraError(
            f"has {manifest.tombstones} deleted documents still in its vectors; run `tessera compact` first",
            file=src,
            field="tombstones",
        )
    sharded = manifest.backend == "sharded"
    vectors = _exact_vectors(
        src, manifest, ShardedBackend.load(src, manifest) if sharded else FaissBackend.load(src)
    )
    params = dict(search_params or {})
    # The output is searched with the source's document encoder (its query_encoder is not copied).
    queries = None if tune_texts is None else load_query_encoder(manifest.encoder).encode_queries(tune_texts)

    def fill(root: Path) -> Manifest:
        backend = build_vector_backend(vectors, factory, params, show_progress, queries)
        backend.save(root)
        return replace(
            manifest,
            backend=kind_of(factory),
            factory=factory,
            search_params=getattr(backend, "search_params", params),  # IVF/HNSW: tuned defaults
            tuning=getattr(backend, "tuning", {}),
            query_encoder="",
        )

    copied = (DocStore.FILE, "docids.txt", *((PASSAGES,) if manifest.chunking else ()))
    return staging.write_derived(src, target, copied, fill, overwrite)


def _exact_vectors(src: Path, manifest: Manifest, backend) -> np.ndarray:
    """The source's stored vectors; a kind that keeps none exactly is named as the source's."""
    try:
        return backend.exact_vectors()
    except TesseraError as exc:
        raise TesseraError(f"'{manifest.factory}': {exc.message}", file=src, field=exc.field) from None


def _reindex_tokens(
    src: Path, target: Path, manifest: Manifest, factory: str, params: Params, overwrite: bool
) -> Path:
    """A token index's token vectors under another faiss factory (not tuned: the late
    interaction's k' decides how deep each query token searches)."""
    validate_token_factory(factory)
    _, _, faiss_params = late_params(params)
    vectors = _exact_vectors(src, manifest, TokenFaiss.load(src))

    def fill(root: Path) -> Manifest:
        TokenFaiss(build_faiss_index(vectors, factory), faiss_params).save(root)
        kept = {k: v for k, v in manifest.search_params.items() if k in ("mode", "k_prime")}
        return replace(manifest, factory=factory, search_params={**kept, **params}, tuning={})

    copied = [DocStore.FILE, "docids.txt", TOKEN_DOCS, OFFSETS]
    copied += [name for name in manifest.files if name not in copied and name != TokenFaiss.FILE]
    return staging.write_derived(src, target, copied, fill, overwrite)
