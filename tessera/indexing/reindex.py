"""Rebuild an index with another vector backend from its stored vectors, without re-encoding.

Encoding is the expensive part of indexing; trying PQ, OPQ, IVF or binary codes on the same
corpus only needs the float vectors an exact (Flat or HNSW) index already holds.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

from tessera.errors import TesseraError
from tessera.indexing import staging
from tessera.indexing.backends import Params, build_vector_backend, kind_of
from tessera.indexing.docstore import DocStore
from tessera.indexing.faiss_backend import FaissBackend
from tessera.indexing.manifest import Manifest, utc_now


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
    target = Path(output).expanduser().resolve()
    if target.exists() and not overwrite:
        raise TesseraError("already exists (use --overwrite to replace it)", file=target)
    manifest = Manifest.read(src)
    if manifest.backend != "faiss":
        raise TesseraError(
            f"a {manifest.backend} index keeps no float vectors to reindex", file=src, field="backend"
        )
    vectors = FaissBackend.load(src).exact_vectors()
    root = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    staging.discard(root)
    root.mkdir(parents=True)
    try:
        for name in (DocStore.FILE, "docids.txt"):
            shutil.copy2(src / name, root / name)
        params = dict(search_params or {})
        build_vector_backend(vectors, factory, params, show_progress).save(root)
        new = replace(
            manifest,
            backend=kind_of(factory),
            factory=factory,
            search_params=params,
            query_encoder="",
            files={},
            created_at=utc_now(),
        )
        new.record_files(root)
        new.write(root)
        staging.publish(root, target, overwrite)
    except BaseException:
        staging.discard(root)
        raise
    return target
