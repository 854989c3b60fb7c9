"""Suite definitions: what each suite holds, and unavailable datasets kept as rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tessera.errors import TesseraError
from tessera.eval.report import metric_table, table_rows
from tessera.eval.sampling import sample_corpus
from tessera.eval.suites import beir, classic, folders, msmarco_passage, resolve_suite
from tests.conftest import read_qrels


def test_classic_prefers_the_beir_test_split(data_dir: Path) -> None:
    by_name = {c.name: c for c in classic(data_dir)}
    assert by_name["cranfield"].query_sets[0].name == "cranfield-beir/test"
    assert by_name["cranfield"].corpus == str(data_dir / "cranfield-beir")
    assert (
        by_name["lisa"].corpus == "glasgow/lisa" and not by_name["lisa"].missing
    )  # no BEIR copy: all queries
    assert "no local copy" in by_name["vaswani"].missing and "no local copy" in by_name["cacm"].missing
    assert by_name["scifact"].missing == "corpus.jsonl absent (queries and qrels only)"
    assert list(by_name)[:6] == ["cranfield", "cisi", "medline", "lisa", "cacm", "vaswani"]
    # Cranfield's query "1" and document "1" are unrelated: classic sets keep every hit.
    assert not any(query_set.remove_query for c in by_name.values() for query_set in c.query_sets)


def test_beir_lists_every_dataset_and_groups_cqadupstack() -> None:
    collections = beir()
    groups = [c for c in collections if c.query_sets[0].group == "beir/cqadupstack"]
    assert len(groups) == 12
    assert len(collections) - len(groups) == 18  # the 18 others of BEIR's table, by name
    private = {c.name for c in collections if c.missing}
    assert private == {"bioasq", "signal1m", "trec-news", "robust04"}
    assert {c.name: c.query_sets[0].spec for c in collections}["nfcorpus"] == "beir/nfcorpus/test"
    # Scored as BEIR scores them: a hit whose id is the query's is dropped (ignore_identical_ids).
    assert all(query_set.remove_query for c in collections for query_set in c.query_sets)
    assert not any(query_set.remove_query for c in msmarco_passage() for query_set in c.query_sets)


def test_msmarco_passage_metrics() -> None:
    (collection,) = msmarco_passage()
    metrics = {q.name: q.metrics for q in collection.query_sets}
    assert metrics["msmarco-passage/dev/small"] == ("RR@10", "R@1000")
    assert metrics["trec-dl-2019"] == metrics["trec-dl-2020"] == ("nDCG@10", "R(rel=2)@1000", "RR(rel=2)@10")


def test_folders_and_unknown_suites(data_dir: Path, tmp_path: Path) -> None:
    first, second = folders(f"{data_dir / 'cisi-beir'},{tmp_path / 'nowhere'}")
    assert (first.name, first.missing, first.query_sets[0].split) == ("cisi-beir", "", "test")
    assert second.missing.startswith("folder not found")
    with pytest.raises(TesseraError, match="unknown suite"):
        resolve_suite("trec")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "cisi-beir").symlink_to(data_dir / "cisi-beir")
    same = folders(f"{data_dir / 'cisi-beir'},{tmp_path / 'other' / 'cisi-beir'}")  # one name, twice
    assert [(c.name, c.query_sets[0].name) for c in same] == [
        ("1-cisi-beir", "1-cisi-beir/test"),  # query sets key saved runs and report rows: apart too
        ("2-cisi-beir", "2-cisi-beir/test"),
    ]


def test_sample_keeps_judged_documents_and_is_deterministic(data_dir: Path, tmp_path: Path) -> None:
    folder = data_dir / "medline-beir"
    judged = {doc for docs in read_qrels(folder / "qrels" / "test.tsv").values() for doc in docs}
    path, kept, total = sample_corpus(str(folder), judged, 300, tmp_path / "a.jsonl")
    again, _, _ = sample_corpus(str(folder), judged, 300, tmp_path / "b.jsonl")
    assert (kept, total) == (300, 1033) and path.read_bytes() == again.read_bytes()
    ids = [json.loads(line)["_id"] for line in path.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 300 and judged <= set(ids)
    corpus_order = [json.loads(line)["_id"] for line in (folder / "corpus.jsonl").read_text().splitlines()]
    assert ids == [doc for doc in corpus_order if doc in set(ids)]


def test_group_rows_average_their_members() -> None:
    results = {
        "systems": {"a": {}, "b": {}},
        "datasets": {
            "x": {"group": ""},
            "f1": {"group": "forums"},
            "f2": {"group": "forums"},
            "gone": {"group": "", "missing": "offline"},
        },
        "results": {
            "x": {"a": {"m": 0.5}, "b": {"m": 0.7}},
            "f1": {"a": {"m": 0.2}, "b": {"m": 0.4}},
            "f2": {"a": {"m": 0.4}},  # b has no f2: no group value for b
        },
    }
    assert table_rows(results) == {"x": ["x"], "forums": ["f1", "f2"]}
    table, complete = metric_table(results, "m")
    assert table["forums"] == pytest.approx({"a": 0.3}) and complete == ["x"]


def test_a_sample_is_made_again_when_its_corpus_changes(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(f'{{"_id": "d{i}", "text": "old text {i}"}}\n' for i in range(5)))
    target = tmp_path / "sample.jsonl"
    sample_corpus(str(corpus), {"d1"}, 3, target)
    assert "old text 1" in target.read_text()
    corpus.write_text("".join(f'{{"_id": "d{i}", "text": "new words {i}"}}\n' for i in range(6)))
    _, kept, total = sample_corpus(str(corpus), {"d1"}, 3, target)
    assert (kept, total) == (3, 6) and "new words 1" in target.read_text() and "old" not in target.read_text()
