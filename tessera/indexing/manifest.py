"""The index directory's table of contents: versioned, checksummed, written last.

A directory is an index only once `manifest.json` is in it, and the manifest is the last
file written before the directory is renamed into place, so a reader never sees half an index.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tessera.errors import IndexFormatError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# Each field's JSON type: a manifest edited by hand or damaged fails here, naming the field,
# not as a Python error wherever the field is first used.
_TYPES: dict[str, type] = {
    "backend": str,
    "encoder": str,
    "doc_count": int,
    "corpus": str,
    "dim": int,
    "metric": str,
    "factory": str,
    "search_params": dict,
    "query_encoder": str,
    "chunking": dict,
    "tuning": dict,
    "tombstones": int,
    "shards": list,
    "created_at": str,
    "files": dict,
}
_JSON_NAMES = {str: "a string", int: "a whole number", dict: "an object", list: "a list"}


def _check_types(data: dict, path: Path) -> None:
    """Every field of the manifest `data` (read from `path`) of its JSON type, counts not negative,
    and every file entry `{"bytes": N, "sha256": HEX}`."""
    for name, kind in _TYPES.items():
        value = data.get(name)
        if name in data and (not isinstance(value, kind) or isinstance(value, bool)):
            raise IndexFormatError(f"{_JSON_NAMES[kind]} expected, got {value!r}", file=path, field=name)
        if kind is int and name in data and value < 0:
            raise IndexFormatError(f"not a count: {value}", file=path, field=name)
    if data.get("metric", "ip") not in ("ip", "l2"):
        raise IndexFormatError(f"'ip' or 'l2' expected, got {data['metric']!r}", file=path, field="metric")
    chunking = data.get("chunking", {})
    if any(isinstance(v, bool) or not isinstance(v, int) for v in chunking.values()):
        raise IndexFormatError(f"whole numbers expected, got {chunking!r}", file=path, field="chunking")
    if not data.get("files"):  # every index has files: --verify then named each as "not part of it"
        raise IndexFormatError("the manifest lists no files", file=path, field="files")
    for name, entry in data.get("files", {}).items():
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("bytes"), int)
            and not isinstance(entry.get("bytes"), bool)
            and isinstance(entry.get("sha256"), str)
        ):
            raise IndexFormatError(
                f'expected {{"bytes": N, "sha256": HEX}}, got {entry!r}', file=path, field=f"files.{name}"
            )


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Manifest:
    backend: str  # "faiss", "sharded", "binary", "bebr", "tokens" or "lucene"
    encoder: str  # a spec that round-trips through tessera.models.registry
    doc_count: int
    corpus: str
    dim: int = 0
    metric: str = "ip"
    factory: str = ""
    search_params: dict[str, float] = field(default_factory=dict)
    # A query encoder trained with the index (JPQ), as a folder inside the index directory.
    query_encoder: str = ""
    # Chunked indexes (`index --chunk`): {"tokens", "overlap", "passages"}; vectors are passages.
    chunking: dict[str, int] = field(default_factory=dict)
    # How the default nprobe/efSearch in `search_params` was measured (indexing/tuning.py).
    tuning: dict[str, object] = field(default_factory=dict)
    # Labels deleted but still in the vector index (kinds without remove: HNSW); listed in
    # tombstones.npy, filtered at search time, dropped by `tessera compact` (indexing/updates.py).
    tombstones: int = 0
    # Distributed builds (indexing/distributed.py): every input shard as {"name", "first" (its
    # first ordinal), "rows", "sha256" (of its float32 vectors; gone once an update changed the
    # shard)}. Backend "sharded" keeps one faiss index per shard in shards/NAME.faiss; a merged
    # build keeps the list as provenance.
    shards: list[dict[str, object]] = field(default_factory=list)
    created_at: str = field(default_factory=utc_now)
    format_version: int = FORMAT_VERSION
    files: dict[str, dict[str, object]] = field(default_factory=dict)

    def record_files(self, root: Path, exclude: frozenset[str] = frozenset()) -> None:
        """Checksum every file of the index but the manifest and the build's own bookkeeping."""
        self.files = {
            path.relative_to(root).as_posix(): {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
            for path in sorted(root.rglob("*"))
            if path.is_file() and path.name != MANIFEST and path.name not in exclude
        }

    def write(self, root: Path) -> None:
        partial = root / f"{MANIFEST}.tmp"
        partial.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        partial.replace(root / MANIFEST)

    @classmethod
    def read(cls, root: Path, verify: bool = True) -> Manifest:
        path = root / MANIFEST
        if not root.is_dir():
            raise IndexFormatError("no such index directory", file=root)
        if not path.is_file():
            raise IndexFormatError("not an index: manifest.json is missing", file=path)
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise IndexFormatError(f"manifest is not valid JSON: {exc}", file=path) from None
        if not isinstance(data, dict):
            raise IndexFormatError(f"manifest is a JSON {type(data).__name__}, not an object", file=path)
        version = data.get("format_version")
        if version != FORMAT_VERSION or isinstance(version, bool):  # true == 1 in Python
            raise IndexFormatError(
                f"index format {version} is not supported by this Tessera (format {FORMAT_VERSION})",
                file=path,
                field="format_version",
            )
        try:
            manifest = cls(**data)
        except TypeError as exc:
            raise IndexFormatError(f"manifest has unexpected fields: {exc}", file=path) from None
        _check_types(data, path)
        if manifest.encoder.startswith("llm:"):  # imported only here: no torch for other indexes
            from tessera.models.llm import with_legacy_placeholder

            manifest.encoder = with_legacy_placeholder(manifest.encoder)
        if verify:
            manifest.verify(root)
        return manifest

    def verify(self, root: Path, checksums: bool = True) -> None:
        """Every listed file there at its size, and with `checksums` its content: a truncated or
        swapped file fails here, not mid-search."""
        for name, info in self.files.items():
            path = root / name
            if not path.is_file():
                raise IndexFormatError("file listed in the manifest is missing", file=path)
            size = path.stat().st_size
            if size != info["bytes"]:
                raise IndexFormatError(
                    f"truncated or altered: {size} bytes, manifest says {info['bytes']}", file=path
                )
            if checksums and sha256_file(path) != info["sha256"]:
                raise IndexFormatError("checksum does not match the manifest", file=path, field="sha256")

    def unlisted(self, root: Path) -> list[Path]:
        """Files in the index directory that no build or update wrote (hidden ones aside): Lucene,
        for one, reads any `segments_N` it finds, so a stray file can change what is searched."""
        listed = set(self.files) | {MANIFEST}
        return [
            path
            for path in sorted(root.rglob("*"))
            if path.is_file()
            and path.relative_to(root).as_posix() not in listed
            and not any(part.startswith(".") for part in path.relative_to(root).parts)
        ]
