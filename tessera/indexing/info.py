"""What an index is, read from its directory: `tessera info`, and the service's index list.

`describe` is the manifest's answer to the first questions about an index (what encoder, what
kind, how many documents, which search defaults); `index_info` adds what only the directory
knows: its size on disk, whether every file still matches its checksum (`verify`), and the
metadata fields its documents carry with how many carry each, which is what a user writing a
`--filter` needs to know.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tessera.errors import IndexFormatError
from tessera.indexing.docstore import DocStore
from tessera.indexing.manifest import MANIFEST, Manifest
from tessera.indexing.search_params import effective_params


def describe(manifest: Manifest) -> dict[str, Any]:
    """The manifest's facts a person asks first, as plain JSON types (a BM25 index has no
    vectors: no factory, width or metric)."""
    vectors = {"factory": manifest.factory, "dim": manifest.dim, "metric": manifest.metric}
    facts: dict[str, Any] = {
        "backend": manifest.backend,
        "encoder": manifest.encoder,
        **(vectors if manifest.backend != "lucene" else {}),
        "search_params": effective_params(manifest.backend, manifest.factory, manifest.search_params),
        "chunked": bool(manifest.chunking),
        "corpus": manifest.corpus,
        "created_at": manifest.created_at,
    }
    if manifest.query_encoder:
        facts["query_encoder"] = manifest.query_encoder
    if manifest.chunking:
        facts["chunking"] = manifest.chunking
    if manifest.tombstones:
        facts["tombstones"] = manifest.tombstones
    if manifest.shards:
        facts["shards"] = len(manifest.shards)
    if manifest.tuning:
        facts["tuning"] = {
            key: value for key, value in manifest.tuning.items() if not isinstance(value, (list, dict))
        }
    return facts


def index_info(index: str | Path, verify: bool = False) -> dict[str, Any]:
    """`describe` plus the directory's size, file count and metadata fields, once every file is
    there at its size; with `verify`, a checksum of every file against the manifest and no file
    the manifest does not list (an `IndexFormatError` names the first that fails)."""
    root = Path(index).expanduser().resolve()
    manifest = Manifest.read(root, verify=verify)
    if verify and (stray := manifest.unlisted(root)):
        more = f" ({len(stray) - 1} more besides)" if len(stray) > 1 else ""
        raise IndexFormatError(
            f"not part of the index: the manifest does not list it{more}; remove it, or rebuild the index",
            file=stray[0],
        )
    store = DocStore(root / DocStore.FILE, readonly=True)
    try:
        fields = store.metadata_fields()
    finally:
        store.close()
    manifest.verify(root, checksums=False)  # cheap, and said before facts of a damaged index
    size = sum(int(entry["bytes"]) for entry in manifest.files.values()) + (root / MANIFEST).stat().st_size
    return {
        "path": str(root),
        "documents": manifest.doc_count,
        **describe(manifest),
        "bytes": size,
        "files": len(manifest.files) + 1,
        "metadata_fields": fields,
        "verified": verify,
    }
