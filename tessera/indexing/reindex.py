"""Rebuild an index with another vector backend from its stored vectors, without re-encoding.

Encoding is the expensive part of indexing; trying PQ, OPQ, IVF or binary codes on the same
corpus only needs the float vectors an exact (Flat or HNSW) index already holds.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tessera.errors import TesseraError
from tessera.indexing import staging
from tessera.indexing.backends import Params, build_vector_backend, kind_of
from tessera.indexing.chunking import PASSAGES
from tessera.indexing.docstore import DocStore
from tessera.indexing.faiss_backend import FaissBackend
from tessera.indexing.manifest import Manifest


def reindex(
    source: str | Path,
    output: str | Path,
    factory: str,
    search_params: Params | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> Path:
    """Write `output`: the documents of `source` under the vector backend `factory`."""
    src = Path(source).expanduser().resolve()
    target = staging.new_target(output, overwrite)
    manifest = Manifest.read(src)
    if manifest.backend == "tokens":
        raise TesseraError(
            "reindex takes single-vector indexes; build a token index with another faiss kind "
            "with `tessera index --encoder colbert:PATH --index FACTORY`",
            file=src,
            field="backend",
        )
    if manifest.backend != "faiss":
        raise TesseraError(
            f"a {manifest.backend} index keeps no float vectors to reindex", file=src, field="backend"
        )
    if manifest.tombstones:
        raise TesseraError(
            f"has {manifest.tombstones} deleted documents still in its vectors; run `tessera compact` first",
            file=src,
            field="tombstones",
        )
    vectors = FaissBackend.load(src).exact_vectors()
    params = dict(search_params or {})

    def fill(root: Path) -> Manifest:
        backend = build_vector_backend(vectors, factory, params, show_progress)
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
