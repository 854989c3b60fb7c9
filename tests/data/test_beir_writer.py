"""BEIR folders with hash splits, written by the package: MEDLINE matches the shared copy byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from tessera.data.beir_writer import query_split, write_beir
from tessera.data.datasets import load_eval_dataset
from tessera.errors import DatasetError, TesseraError
from tests.conftest import run_cli

FILES = ("corpus.jsonl", "queries.jsonl", "qrels/all.tsv", "qrels/train.tsv", "qrels/test.tsv")


def test_medline_written_here_equals_the_shared_beir_copy(data_dir: Path, tmp_path: Path) -> None:
    written = write_beir("glasgow/medline", tmp_path / "medline", show_progress=False)
    for name in FILES:
        assert (written / name).read_bytes() == (data_dir / "medline-beir" / name).read_bytes(), name


def test_lisa_gets_disjoint_train_and_test_queries(data_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "lisa"
    result = run_cli("data", "beir", "glasgow/lisa", "-o", str(output))
    assert "qrels/train.tsv" in result.stdout
    train, test = load_eval_dataset(output, "train"), load_eval_dataset(output, "test")
    everything = load_eval_dataset(output, "all")
    assert not set(train.queries) & set(test.queries)
    assert set(train.queries) | set(test.queries) == set(everything.queries) == set(everything.qrels)
    assert len(train.queries) == 23 and len(test.queries) == 12
    assert all(query_split(q) == "train" for q in train.queries)
    with pytest.raises(TesseraError, match="already exists"):
        write_beir("glasgow/lisa", output, show_progress=False)
    with pytest.raises(DatasetError, match="field 'dataset'"):
        write_beir("no/such-dataset", tmp_path / "x", show_progress=False)
    assert not (tmp_path / "x").exists()


def test_record_fields_travel_as_beir_metadata(tmp_path: Path) -> None:
    """Cranfield's author and bibliography reach the BEIR copy, and an index of it, as metadata."""
    from tessera.data.corpus import open_corpus

    written = write_beir("cranfield", tmp_path / "cranfield", show_progress=False)
    first = next(iter(open_corpus(written)))
    assert first.metadata == {"author": "brenckman,m.", "bib": "j. ae. scs. 25, 1958, 324."}


def test_overwrite_replaces_a_beir_folder_never_other_files(tmp_path: Path) -> None:
    from tessera.data.beir_folder import new_target

    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "important.txt").write_text("precious")
    with pytest.raises(TesseraError, match="is not a BEIR folder \\(no corpus.jsonl\\)"):
        new_target(junk, overwrite=True)
    assert (junk / "important.txt").read_text() == "precious"
    (junk / "corpus.jsonl").write_text("")  # a BEIR folder, with a note of its user's inside
    with pytest.raises(TesseraError, match="holds 'important.txt', which --overwrite would delete"):
        new_target(junk, overwrite=True)
    (junk / "important.txt").unlink()
    (junk / "qrels").mkdir()
    (junk / "qrels" / "my-judgments.tsv").write_text("mine")  # inside the folder's own qrels/
    with pytest.raises(TesseraError, match="holds 'qrels/my-judgments.tsv'"):
        new_target(junk, overwrite=True)
    (junk / "qrels" / "my-judgments.tsv").rename(junk / "qrels" / "test.tsv")
    assert new_target(junk, overwrite=True) == junk.resolve()
    with pytest.raises(TesseraError, match="holds the input"):
        new_target(tmp_path, overwrite=True, inputs=(junk,))
