"""`tessera info`: an index's facts from its directory, the metadata fields a filter can use, and
`--verify` catching a file that no longer matches its checksum."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tessera.errors import IndexFormatError
from tessera.indexing.info import index_info
from tests.conftest import run_cli


def test_info_names_the_index_and_the_fields_to_filter_by(cranfield_bm25: Path) -> None:
    facts = index_info(cranfield_bm25)
    assert (facts["documents"], facts["backend"], facts["corpus"]) == (1400, "lucene", "cranfield")
    assert facts["encoder"] == "bm25:k1=0.9,b=0.4,title=0.25" and facts["chunked"] is False
    assert not {"factory", "dim", "metric"} & set(facts)  # a BM25 index has no vectors
    assert facts["metadata_fields"] == {"author": 1347, "bib": 1330}  # records with the field filled
    on_disk = sum(path.stat().st_size for path in cranfield_bm25.rglob("*") if path.is_file())
    assert facts["bytes"] == on_disk and facts["verified"] is False
    assert json.loads(run_cli("info", str(cranfield_bm25), "--json", "--verify").stdout) == {
        **facts,
        "verified": True,
    }


def test_verify_names_a_file_that_changed(cranfield_bm25: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(cranfield_bm25, copy)
    with (copy / "docstore.sqlite").open("r+b") as handle:
        handle.seek(200)
        handle.write(b"\x00\x01\x02")
    assert index_info(copy)["documents"] == 1400  # without --verify only the manifest is read
    with pytest.raises(IndexFormatError, match="checksum does not match") as info:
        index_info(copy, verify=True)
    assert info.value.file == str(copy / "docstore.sqlite")
    failed = run_cli("info", str(copy), "--verify", check=False)
    assert failed.returncode == 1 and "docstore.sqlite" in failed.stderr


def test_a_missing_or_foreign_document_store_is_named(cranfield_bm25: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(cranfield_bm25, copy)
    (copy / "docstore.sqlite").write_bytes(b"not a database, but the same name" * 100)
    with pytest.raises(IndexFormatError, match="not a readable document store") as info:
        index_info(copy)
    assert info.value.file == str(copy / "docstore.sqlite")
    (copy / "docstore.sqlite").unlink()
    failed = run_cli("info", str(copy), check=False)
    assert (
        failed.returncode == 1 and "docstore.sqlite: the index's document store is missing" in failed.stderr
    )
    assert "Traceback" not in failed.stderr


def test_a_file_missing_or_not_the_manifests_is_named(cranfield_bm25: Path, tmp_path: Path) -> None:
    """`info` printed the facts of an index missing a file; `--verify` passed one holding a file
    no build wrote (Lucene reads a stray `segments_N`: search then failed as "too old")."""
    copy = tmp_path / "copy"
    shutil.copytree(cranfield_bm25, copy)
    (copy / "lucene" / "segments_9").write_text("garbage\n")
    (copy / ".DS_Store").write_bytes(b"\0")  # hidden files are a desktop's, not the index's
    assert index_info(copy)["documents"] == 1400
    with pytest.raises(
        IndexFormatError, match="not part of the index: the manifest does not list it"
    ) as info:
        index_info(copy, verify=True)
    assert info.value.file == str(copy / "lucene" / "segments_9")
    (copy / "lucene" / "segments_9").unlink()
    assert index_info(copy, verify=True)["verified"] is True
    victim = next(copy.glob("lucene/*.si"))
    victim.unlink()
    failed = run_cli("info", str(copy), check=False)
    assert failed.returncode == 1 and f"{victim}: file listed in the manifest is missing" in failed.stderr


@pytest.mark.parametrize(
    ("change", "field", "said"),
    [
        ({"files": None}, "files", "an object expected, got None"),
        ({"doc_count": "3"}, "doc_count", "a whole number expected, got '3'"),
        ({"encoder": 5}, "encoder", "a string expected, got 5"),
        ({"dim": "384"}, "dim", "a whole number expected"),
        ({"tombstones": -1}, "tombstones", "not a count: -1"),
        ({"files": {"docids.txt": "x"}}, "files.docids.txt", 'expected {"bytes": N, "sha256": HEX}'),
        ({"files": {"docids.txt": {"bytes": 3}}}, "files.docids.txt", 'expected {"bytes": N, "sha256": HEX}'),
        ({"files": {}}, "files", "the manifest lists no files"),
        ({"metric": "cosine"}, "metric", "'ip' or 'l2' expected, got 'cosine'"),
        ({"chunking": {"tokens": "64"}}, "chunking", "whole numbers expected"),
        ({"format_version": True}, "format_version", "index format True is not supported"),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_named_by_field(
    cranfield_bm25: Path, tmp_path: Path, change: dict, field: str, said: str
) -> None:
    """Valid JSON of the wrong shape was a Python traceback (AttributeError, KeyError, TypeError)
    wherever the field was first used: in `info`, `search`, `sync`."""
    copy = tmp_path / "copy"
    shutil.copytree(cranfield_bm25, copy)
    manifest = copy / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), **change}))
    with pytest.raises(IndexFormatError, match=re.escape(said)) as info:
        index_info(copy)
    assert (info.value.file, info.value.field) == (str(manifest), field)
    failed = run_cli("search", str(copy), "wings", check=False)
    assert failed.returncode == 1 and f"field '{field}'" in failed.stderr and "Traceback" not in failed.stderr


def test_a_manifest_that_is_not_an_object_is_named(cranfield_bm25: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(cranfield_bm25, copy)
    (copy / "manifest.json").write_text("[1]")
    with pytest.raises(IndexFormatError, match="manifest is a JSON list, not an object"):
        index_info(copy)
