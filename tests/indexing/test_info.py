"""`tessera info`: an index's facts from its directory, the metadata fields a filter can use, and
`--verify` catching a file that no longer matches its checksum."""

from __future__ import annotations

import json
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
