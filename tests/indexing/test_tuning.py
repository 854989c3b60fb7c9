"""Search defaults tuned at build time (indexing/tuning.py) on Cranfield's MiniLM vectors."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import faiss
import numpy as np
import pytest

from tessera.errors import CorpusError, TesseraError
from tessera.indexing.builder import build_index
from tessera.indexing.faiss_backend import FaissBackend
from tessera.indexing.manifest import Manifest
from tessera.indexing.reindex import reindex
from tessera.indexing.tuning import TARGET, exact_neighbours, tunable_parameter, tune
from tessera.retrieval.index import Index
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def flat_vectors(cranfield_dense: Path) -> np.ndarray:
    return FaissBackend.load(cranfield_dense).exact_vectors()


@pytest.fixture(scope="module")
def query_vectors(cranfield_dense: Path, data_dir: Path) -> np.ndarray:
    """Cranfield's 225 queries, encoded: held out in every sense (not document vectors)."""
    lines = (data_dir / "cranfield-beir" / "queries.jsonl").read_text().splitlines()
    texts = [q["text"] for q in map(json.loads, lines)]
    assert len(texts) == 225
    return Index.load(cranfield_dense).encoder.encode_queries(texts)


def recall_vs_exact(index: Index, vectors: np.ndarray, queries: np.ndarray) -> float:
    _, found = index.backend.search(queries, 10)
    truth = exact_neighbours(vectors, queries, 10)
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)]))


@pytest.mark.parametrize(
    ("factory", "param", "faiss_default"), [("IVF64,Flat", "nprobe", 1), ("HNSW8", "efSearch", 16)]
)
def test_tuned_default_reaches_the_target_on_real_queries(
    cranfield_dense: Path, tmp_path: Path, flat_vectors, query_vectors, factory, param, faiss_default
) -> None:
    out = reindex(cranfield_dense, tmp_path / "idx", factory, show_progress=False)
    manifest = Manifest.read(out)
    tuning = manifest.tuning
    assert tuning["param"] == param and manifest.search_params == {param: tuning["value"]}
    assert tuning["target_met"] and tuning["recall"] >= TARGET and tuning["queries"] == 1000
    # The sweep is increasing and the value is the first one reaching the target.
    values = [v for v, _ in tuning["sweep"]]
    assert values == sorted(values) and values[-1] == tuning["value"]
    assert all(r < TARGET for _, r in tuning["sweep"][:-1])
    # Index.load applies it; the real test queries (never sampled) reach the target too.
    tuned = Index.load(out)
    assert recall_vs_exact(tuned, flat_vectors, query_vectors) >= TARGET
    if tuning["value"] != faiss_default:
        plain = Index.load(out, search_params={param: faiss_default})
        assert recall_vs_exact(plain, flat_vectors, query_vectors) < TARGET


def test_ivf_pq_tuned_to_its_ceiling_and_ndcg_recovered(cranfield_dense: Path, tmp_path: Path) -> None:
    """IVF64,PQ48 (issue 15's example): PQ codes cap recall below 0.95, so the default is the
    smallest nprobe within 0.95 of the exhaustive scan's recall; nDCG@10 comes back near flat."""
    from tessera.eval.evaluate import evaluate

    out = reindex(cranfield_dense, tmp_path / "ivfpq", "IVF64,PQ48", show_progress=False)
    tuning = Manifest.read(out).tuning
    assert not tuning["target_met"] and tuning["ceiling"] < TARGET
    assert tuning["recall"] >= TARGET * tuning["ceiling"] and tuning["value"] > 1

    def ndcg(index: Path, params: dict | None = None) -> float:
        metrics = evaluate(
            [index], "cranfield", metrics=["nDCG@10"], show_progress=False, search_params=params
        )
        return metrics.metrics["nDCG@10"]

    flat, before, tuned = ndcg(cranfield_dense), ndcg(out, {"nprobe": 1}), ndcg(out)
    assert flat - tuned < 0.5 * (flat - before), (flat, before, tuned)


@pytest.mark.parametrize("factory", ["IVF64,PQ48,RFlat", "IVF64,RaBitQ,RFlat"])
def test_refine_index_tunes_its_k_factor_then_nprobe(
    cranfield_dense: Path, tmp_path: Path, flat_vectors, query_vectors, factory: str
) -> None:
    """IVF64,PQ48,RFlat: the exact re-scoring of k_factor x 10 candidates lifts PQ48's ceiling,
    so the tuned pair (k_factor_rf, nprobe) reaches the target that IVF64,PQ48 cannot. The same
    for 1-bit RaBitQ codes (docs/scaling.md: IVF,RaBitQ,RFlat is one of the kinds that reach 100x)."""
    out = reindex(cranfield_dense, tmp_path / "refine", factory, show_progress=False)
    manifest = Manifest.read(out)
    tuning = manifest.tuning
    k_factors = [v for v, _ in tuning["k_factor_rf_sweep"]]
    assert k_factors[0] == 1 and k_factors[-1] == manifest.search_params["k_factor_rf"] > 1
    assert all(r < TARGET for _, r in tuning["k_factor_rf_sweep"][:-1])
    assert tuning["k_factor_nprobe"] == 64  # fewer lists than REFINE_NPROBE: all of them
    assert tuning["target_met"] and manifest.search_params["nprobe"] == tuning["value"]
    index = Index.load(out)
    refine = faiss.downcast_index(index.backend.index)
    assert refine.k_factor == manifest.search_params["k_factor_rf"]
    assert recall_vs_exact(index, flat_vectors, query_vectors) >= TARGET

    given = reindex(cranfield_dense, tmp_path / "given", factory, {"k_factor_rf": 1}, show_progress=False)
    manifest = Manifest.read(given)
    assert "k_factor_rf_sweep" not in manifest.tuning and not manifest.tuning["target_met"]
    assert manifest.search_params["k_factor_rf"] == 1


def test_explicit_parameters_override_tuning(cranfield_dense: Path, tmp_path: Path) -> None:
    given = reindex(cranfield_dense, tmp_path / "given", "IVF64,Flat", {"nprobe": 2}, show_progress=False)
    manifest = Manifest.read(given)
    assert manifest.search_params == {"nprobe": 2} and manifest.tuning == {}
    assert faiss.extract_index_ivf(Index.load(given).backend.index).nprobe == 2

    tuned = reindex(cranfield_dense, tmp_path / "tuned", "IVF64,Flat", show_progress=False)
    value = Manifest.read(tuned).search_params["nprobe"]
    assert faiss.extract_index_ivf(Index.load(tuned).backend.index).nprobe == value
    searched = Index.load(tuned, search_params={"nprobe": 64})
    assert faiss.extract_index_ivf(searched.backend.index).nprobe == 64


def test_manifest_round_trips_the_tuning(cranfield_dense: Path, tmp_path: Path) -> None:
    out = reindex(cranfield_dense, tmp_path / "hnsw", "HNSW8", show_progress=False)
    manifest = Manifest.read(out)
    on_disk = json.loads((out / "manifest.json").read_text())
    assert (
        on_disk["tuning"] == asdict(manifest)["tuning"] and on_disk["search_params"] == manifest.search_params
    )
    manifest.write(tmp_path)
    assert Manifest.read(tmp_path, verify=False) == manifest


def test_the_builder_tunes_and_other_kinds_are_left_alone(
    data_dir: Path, cranfield_dense: Path, tmp_path: Path
) -> None:
    lines = (data_dir / "cranfield-beir" / "corpus.jsonl").read_text().splitlines()[:300]
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("\n".join(lines) + "\n")
    out = build_index(corpus, tmp_path / "ivf", factory="PCA64,IVF8,Flat", show_progress=False)
    manifest = Manifest.read(out)
    assert manifest.tuning["param"] == "nprobe" and manifest.search_params == {
        "nprobe": manifest.tuning["value"]
    }
    assert faiss.extract_index_ivf(Index.load(out).backend.index).nprobe == manifest.tuning["value"]
    flat = Manifest.read(cranfield_dense)
    assert (flat.search_params, flat.tuning) == ({}, {})
    pq = Manifest.read(reindex(cranfield_dense, tmp_path / "pq", "PQ16x4", show_progress=False))
    assert (pq.search_params, pq.tuning) == ({}, {})
    assert tunable_parameter(faiss.index_factory(8, "PCA4,HNSW8")) == "efSearch"
    assert tune(faiss.index_factory(8, "Flat"), np.zeros((50, 8), np.float32)) == ({}, {})


def test_tuned_on_the_workloads_own_queries(
    cranfield_dense: Path, tmp_path: Path, data_dir: Path, flat_vectors, query_vectors, caplog
) -> None:
    """`reindex --tune-queries FILE`: the default is tuned on Cranfield's 225 real queries (a
    BEIR queries.jsonl) instead of perturbed corpus rows, recorded as such, applied at load, and
    the same queries measured by another path (Index.search against faiss.knn) get exactly the
    recall the tuner recorded."""
    out = tmp_path / "given"
    q = str(data_dir / "cranfield-beir" / "queries.jsonl")
    run_cli("reindex", str(cranfield_dense), "-o", str(out), "--index", "IVF64,Flat", "--tune-queries", q)
    tuning = Manifest.read(out).tuning
    assert tuning["query_source"] == "given" and "query_cosine" not in tuning
    assert tuning["queries"] == 225 and tuning["target_met"]
    assert all(r < TARGET for _, r in tuning["sweep"][:-1])
    index = Index.load(out)
    assert faiss.extract_index_ivf(index.backend.index).nprobe == tuning["value"]
    assert recall_vs_exact(index, flat_vectors, query_vectors) == pytest.approx(tuning["recall"], abs=2e-3)
    # Over `sample` queries a seeded subset is used; a wrong width is refused.
    ivf = faiss.index_factory(flat_vectors.shape[1], "IVF16,Flat", faiss.METRIC_INNER_PRODUCT)
    ivf.train(flat_vectors)
    ivf.add(flat_vectors)
    with caplog.at_level(logging.WARNING, logger="tessera.indexing.tuning"):
        _, record = tune(ivf, flat_vectors, queries=query_vectors, sample=100)
        assert record["queries"] == 100 and record["query_source"] == "given" and not caplog.records
        tune(ivf, flat_vectors, queries=query_vectors[:30])
    assert "tuning on 30 queries" in caplog.text
    with pytest.raises(TesseraError, match="384-d") as error:
        tune(ivf, flat_vectors, queries=np.zeros((3, 10), np.float32))
    assert error.value.field == "tune_queries"


def test_tune_queries_refused_where_nothing_is_tuned(
    cranfield_dense: Path, tmp_path: Path, data_dir: Path
) -> None:
    queries = data_dir / "cranfield-beir" / "queries.jsonl"
    with pytest.raises(TesseraError, match="no search parameter to tune") as error:
        reindex(cranfield_dense, tmp_path / "b", "bebr:1", tune_queries=queries, show_progress=False)
    assert error.value.field == "tune_queries"
    with pytest.raises(TesseraError, match="BM25"):
        build_index("cranfield", tmp_path / "bm25", encoder="bm25", tune_queries=queries, show_progress=False)
    bad = tmp_path / "queries.txt"
    bad.write_text("what is heat transfer\n")
    with pytest.raises(CorpusError, match=r"\.jsonl or \.tsv") as error:
        reindex(cranfield_dense, tmp_path / "x", "IVF64,Flat", tune_queries=bad, show_progress=False)
    assert error.value.field == "tune_queries" and "queries.txt" in str(error.value)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(CorpusError, match="has no queries"):
        reindex(cranfield_dense, tmp_path / "y", "IVF64,Flat", tune_queries=empty, show_progress=False)
    ray = ("index", "cranfield", "-o", str(tmp_path / "r"), "--ray", "--tune-queries", str(queries))
    result = run_cli(*ray, check=False)
    assert result.returncode != 0 and "--tune-queries is not supported with --ray" in result.stderr
    assert not any(tmp_path.glob("[bxyr]"))  # nothing was published
