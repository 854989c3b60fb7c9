from __future__ import annotations

import json
from pathlib import Path

import pytest

from tessera.errors import IndexFormatError
from tessera.indexing.builder import build_index
from tessera.indexing.manifest import FORMAT_VERSION, Manifest


@pytest.fixture
def small_index(tmp_path: Path) -> Path:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"_id": "a", "text": "alpha beta"}\n{"_id": "b", "text": "gamma delta"}\n')
    return build_index(corpus, tmp_path / "idx", encoder="bm25", show_progress=False)


def test_manifest_records_every_file_with_checksums(small_index: Path) -> None:
    manifest = Manifest.read(small_index)
    assert (manifest.backend, manifest.encoder, manifest.doc_count) == (
        "lucene",
        "bm25:k1=0.9,b=0.4,title=0.25",
        2,
    )
    assert manifest.format_version == FORMAT_VERSION
    assert "docstore.sqlite" in manifest.files
    assert any(name.startswith("lucene/") for name in manifest.files)
    assert all(len(info["sha256"]) == 64 for info in manifest.files.values())
    assert not (small_index / "progress.json").exists()


def test_truncated_file_is_detected(small_index: Path) -> None:
    store = small_index / "docstore.sqlite"
    store.write_bytes(store.read_bytes()[:-100])
    with pytest.raises(IndexFormatError, match="truncated or altered") as info:
        Manifest.read(small_index)
    assert info.value.file == str(store)


def test_altered_file_of_same_size_is_detected(small_index: Path) -> None:
    store = small_index / "docstore.sqlite"
    data = bytearray(store.read_bytes())
    data[-1] ^= 0xFF
    store.write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match="checksum") as info:
        Manifest.read(small_index)
    assert info.value.field == "sha256"


def test_missing_or_foreign_manifest(small_index: Path, tmp_path: Path) -> None:
    with pytest.raises(IndexFormatError, match="no such index directory"):
        Manifest.read(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(IndexFormatError, match="manifest.json is missing"):
        Manifest.read(tmp_path / "empty")
    path = small_index / "manifest.json"
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "format_version": 99}))
    with pytest.raises(IndexFormatError, match="index format 99 is not supported") as info:
        Manifest.read(small_index)
    assert info.value.field == "format_version"
