from __future__ import annotations

from pathlib import Path

import pytest

from tessera.errors import TesseraError
from tessera.indexing.builder import build_index
from tessera.indexing.manifest import Manifest
from tessera.retrieval.index import Index
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def bebr_index(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("bebr")
    corpus = work / "subset.jsonl"
    lines = (data_dir / "cranfield-beir" / "corpus.jsonl").read_text().splitlines()[:150]
    corpus.write_text("\n".join(lines))
    return build_index(corpus, work / "bebr1", encoder="minilm", factory="bebr:1", show_progress=False)


def test_compatible_successor_keeps_document_codes(bebr_index: Path, tmp_path: Path) -> None:
    out = tmp_path / "successor"
    run_cli("train", "bebr", "--index", str(bebr_index), "-o", str(out), "--compatible")
    old, new = Manifest.read(bebr_index), Manifest.read(out)
    assert new.files["codes.faiss"] == old.files["codes.faiss"]  # no document re-indexed
    assert new.files["binarizer.safetensors"] == old.files["binarizer.safetensors"]
    assert "query_binarizer/binarizer.safetensors" in new.files
    query = "supersonic flow over a wedge"  # binarized by the successor: SDC (1 bit defaults to ADC)
    before = {h.doc_id for h in Index.load(bebr_index, search_params={"mode": "sdc"}).search(query, k=10)}
    after = {h.doc_id for h in Index.load(out, search_params={"mode": "sdc"}).search(query, k=10)}
    assert len(before & after) >= 4  # new query codes still land among the old documents


def test_plain_retraining_writes_new_codes(bebr_index: Path, tmp_path: Path) -> None:
    from tessera.training.bebr_index import retrain_bebr_index

    out = retrain_bebr_index(bebr_index, tmp_path / "two-bits", bits=2, show_progress=False)
    manifest = Manifest.read(out)
    assert manifest.factory == "bebr:2" and manifest.doc_count == 150
    assert manifest.files["codes.faiss"]["bytes"] > Manifest.read(bebr_index).files["codes.faiss"]["bytes"]
    assert len(Index.load(out).search("shock waves", k=5)) == 5
    with pytest.raises(TesseraError, match="keeps the old number of bits"):
        retrain_bebr_index(bebr_index, tmp_path / "x", bits=2, compatible=True, show_progress=False)


def test_indexing_fits_the_itq_start_and_train_bebr_trains(bebr_index: Path, tmp_path: Path) -> None:
    import numpy as np

    from tessera.indexing.binary_backend import BebrBackend
    from tessera.models.bebr_start import fit_start
    from tessera.training.bebr import train_binarizer
    from tessera.training.bebr_index import _document_vectors

    vectors = _document_vectors(bebr_index, Manifest.read(bebr_index), show_progress=False)
    start = fit_start(vectors, 1)
    indexed = BebrBackend.load(bebr_index)
    assert np.array_equal(indexed.codes, start.encode(vectors))  # the index holds the start's codes
    untrained, _ = train_binarizer(vectors, 1, epochs=0, show_progress=False)
    assert np.array_equal(untrained.encode(vectors), indexed.codes)  # training starts where indexing stops
    assert all(not block.fc2.weight.any() for block in indexed.binarizer.steps)  # untrained blocks
    out = tmp_path / "trained"
    run_cli("train", "bebr", "--index", str(bebr_index), "-o", str(out), "--epochs", "2")
    trained = BebrBackend.load(out)
    assert any(block.fc2.weight.any() for block in trained.binarizer.steps)
    assert not np.array_equal(trained.codes, indexed.codes)


def test_bad_epochs_stop_before_any_work(bebr_index: Path, tmp_path: Path) -> None:
    from unittest import mock

    from tessera.training import bebr_index as module

    refused = pytest.raises(TesseraError, match="at least 1 for compatible training")
    with mock.patch.object(module, "_document_vectors") as encode, refused:
        module.retrain_bebr_index(bebr_index, tmp_path / "x", compatible=True, epochs=0, show_progress=False)
    encode.assert_not_called()  # refused before re-encoding the corpus
    result = run_cli(
        "train", "bebr", "--index", str(bebr_index), "-o", str(tmp_path / "y"), "--epochs", "-1", check=False
    )
    assert result.returncode != 0 and "epochs must be >= 0" in result.stderr + result.stdout
    assert not (tmp_path / "y").exists()
    for bits in (0, 99):  # 0 was taken as "the index's bits"; 99 refused only after re-encoding
        with (
            mock.patch.object(module, "_document_vectors") as encode,
            pytest.raises(TesseraError, match="1..4"),
        ):
            module.retrain_bebr_index(bebr_index, tmp_path / "b", bits=bits, show_progress=False)
        encode.assert_not_called()
