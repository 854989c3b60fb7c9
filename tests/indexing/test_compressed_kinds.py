"""Every compressed kind through the CLI: build, save, load, search, evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tessera.indexing.manifest import Manifest
from tests.conftest import run_cli


@pytest.mark.parametrize(
    ("factory", "params", "backend", "files"),
    [
        ("binary", [], "binary", {"codes.faiss"}),
        (
            "bebr:2",
            ["--param", "mode=sdc"],
            "bebr",
            {"codes.faiss", "binarizer.safetensors", "binarizer.json"},
        ),
        ("IVF16,PQ24", ["--param", "nprobe=8"], "faiss", {"vectors.faiss"}),
    ],
)
def test_kind_through_the_cli(
    cranfield_dense: Path, data_dir: Path, tmp_path: Path, factory, params, backend, files
) -> None:
    out = tmp_path / "idx"
    run_cli("reindex", str(cranfield_dense), "-o", str(out), "--index", factory, *params)
    manifest = Manifest.read(out)
    assert (manifest.backend, manifest.factory, manifest.doc_count) == (backend, factory, 1400)
    assert files <= set(manifest.files) and "vectors.faiss" not in set(manifest.files) - files
    hits = json.loads(
        run_cli("search", str(out), "heat transfer in hypersonic flow", "-k", "5", "--json").stdout
    )
    assert [h["rank"] for h in hits] == [1, 2, 3, 4, 5]
    run_cli(
        "eval",
        str(out),
        "--dataset",
        str(data_dir / "cranfield-beir"),
        "--metrics",
        "nDCG@10",
        "--json",
        str(tmp_path / "m.json"),
    )
    assert 0.2 < json.loads((tmp_path / "m.json").read_text())["nDCG@10"] < 0.4


def test_bebr_search_mode_can_change_at_load(cranfield_dense: Path, tmp_path: Path) -> None:
    from tessera.indexing.reindex import reindex
    from tessera.retrieval.index import Index

    out = reindex(cranfield_dense, tmp_path / "bebr", "bebr:1", show_progress=False)
    query = "pressure distribution on a cone"
    sdc = Index.load(out, search_params={"mode": "sdc"}).search(query, k=10)
    rescored = Index.load(out, search_params={"mode": "hamming", "rescore": 1400}).search(query, k=10)
    # Rescoring every document by decoded inner product is exactly what SDC's lookup tables compute.
    assert [h.doc_id for h in sdc] == [h.doc_id for h in rescored]
    assert [h.score for h in sdc] == pytest.approx([h.score for h in rescored], abs=1e-4)
    adc = Index.load(out).search(query, k=10)  # 1 bit: ADC unless told, the float query unbinarized
    assert Index.load(out).backend.mode == "adc"
    from tessera.indexing.info import index_info

    assert index_info(out)["search_params"] == {"mode": "adc"}  # `tessera info` says what a search does
    assert [h.score for h in adc] != pytest.approx([h.score for h in sdc], abs=1e-3)


def test_bad_bebr_spec_fails_before_encoding(tmp_path: Path, data_dir: Path) -> None:
    result = run_cli(
        "index", str(data_dir / "cranfield-beir"), "-o", str(tmp_path / "i"), "--index", "bebr:9", check=False
    )
    assert result.returncode == 1 and "BEBR takes 1 to 4 bits" in result.stderr
    assert not list(tmp_path.iterdir())
