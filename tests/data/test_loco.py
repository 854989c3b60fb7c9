"""LoCoV1 exports (JSONL and Parquet) read and written as BEIR folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tessera.data.datasets import load_eval_dataset
from tessera.data.loco import read_loco
from tessera.errors import DatasetError
from tests.conftest import read_corpus, read_qrels, run_cli


def test_a_loco_export_becomes_a_beir_folder(tmp_path: Path) -> None:
    """LoCoV1's column layout (a format test: three tiny rows written here, not a corpus)."""
    queries, documents = tmp_path / "queries.jsonl", tmp_path / "documents.jsonl"
    rows = [
        {"qid": "q1", "dataset": "qasper_title", "query": "first", "answer_pids": ["p1"]},
        {"qid": "q2", "dataset": "qasper_title", "query": "second", "answer_pids": ["p2", "p3"]},
        {"qid": "q9", "dataset": "gov_report", "query": "other task", "answer_pids": ["g1"]},
    ]
    queries.write_text("".join(json.dumps(r) + "\n" for r in rows))
    docs = [{"pid": f"p{i}", "dataset": "qasper_title", "passage": f"passage {i}"} for i in (1, 2, 3)]
    docs.append({"pid": "g1", "dataset": "gov_report", "passage": "a report"})
    documents.write_text("".join(json.dumps(d) + "\n" for d in docs))

    output = tmp_path / "loco"
    result = run_cli(
        "data", "loco", str(queries), str(documents), "--task", "qasper_title", "-o", str(output)
    )
    assert "3 documents, 2 queries (2 judged, 3 judgments)" in result.stdout
    assert read_qrels(output / "qrels" / "test.tsv") == {"q1": {"p1": 1}, "q2": {"p2": 1, "p3": 1}}
    assert set(read_corpus(output)) == {"p1", "p2", "p3"}
    assert load_eval_dataset(output, "test").queries == {"q1": "first", "q2": "second"}

    pyarrow = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pyarrow.Table.from_pylist(rows), tmp_path / "queries.parquet")
    pq.write_table(pyarrow.Table.from_pylist(docs), tmp_path / "documents.parquet")
    task = read_loco(tmp_path / "queries.parquet", tmp_path / "documents.parquet", "gov_report")
    assert task.qrels == {"q9": {"g1": 1}} and task.documents == {"g1": "a report"}
    snapshot = tmp_path / "snapshot"  # a dataset snapshot: Parquet rows and JSON metadata
    (snapshot / "data").mkdir(parents=True)
    (tmp_path / "documents.parquet").rename(snapshot / "data" / "documents.parquet")
    (snapshot / "dataset_infos.json").write_text('{"default": {"features": {}}}')
    assert read_loco(tmp_path / "queries.parquet", snapshot, "gov_report").documents == {"g1": "a report"}

    with pytest.raises(DatasetError, match="tasks present: gov_report, qasper_title"):
        read_loco(queries, documents, "no_such_task")
    documents.write_text(json.dumps({"pid": "p1", "dataset": "qasper_title", "text": "x"}) + "\n")
    with pytest.raises(DatasetError, match=r"documents.jsonl:1, field 'passage'"):
        read_loco(queries, documents, "qasper_title")
    documents.write_text(json.dumps(docs[0]) + "\n")
    with pytest.raises(DatasetError, match=r"queries.jsonl:2, field 'answer_pids'"):
        read_loco(queries, documents, "qasper_title")
    documents.write_text(json.dumps({"pid": "p\t1", "dataset": "qasper_title", "passage": "x"}) + "\n")
    with pytest.raises(DatasetError, match=r"documents.jsonl:1, field 'pid': id 'p\\t1' holds the control"):
        read_loco(queries, documents, "qasper_title")  # an id no index would take
