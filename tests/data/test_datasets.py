from __future__ import annotations

from pathlib import Path

import pytest

from tessera.data.datasets import load_eval_dataset, load_queries, read_beir_qrels
from tessera.data.irds import load
from tessera.errors import DatasetError, TesseraError


def test_cranfield_reads_offline_through_ir_datasets(data_dir: Path) -> None:
    dataset = load("cranfield")
    assert dataset.docs_count() == 1400
    assert sum(1 for _ in dataset.queries_iter()) == 225
    qrels = list(dataset.qrels_iter())
    assert len(qrels) == 1837
    # ir_datasets keeps Cranfield's codes as grades (its docs call 4 the complete answer).
    assert {q.relevance for q in qrels} == {-1, 1, 2, 3, 4}


def test_eval_dataset_from_ir_datasets_keeps_judged_queries(data_dir: Path) -> None:
    dataset = load_eval_dataset("cranfield")
    assert dataset.name == "cranfield"
    assert len(dataset.queries) == len(dataset.qrels) == 225
    assert dataset.queries["1"].startswith("what similarity laws must be obeyed")


def test_beir_folder_split(data_dir: Path) -> None:
    test = load_eval_dataset(data_dir / "cranfield-beir", split="test")
    train = load_eval_dataset(data_dir / "cranfield-beir", split="train")
    assert (len(test.queries), len(train.queries)) == (114, 111)
    assert not set(test.queries) & set(train.queries)
    with pytest.raises(DatasetError, match="no split 'dev'") as info:
        load_eval_dataset(data_dir / "cranfield-beir", split="dev")
    assert info.value.field == "split"


def test_beir_name_in_data_dir_needs_no_corpus(data_dir: Path) -> None:
    scifact = load_eval_dataset("beir/scifact/test")
    assert (len(scifact.queries), sum(len(v) for v in scifact.qrels.values())) == (300, 339)
    assert load_eval_dataset("cisi-beir").name == "cisi-beir/test"


def test_unknown_dataset_id_is_a_clear_error(data_dir: Path) -> None:
    with pytest.raises(DatasetError, match=r"unknown dataset id 'cranfeld' \(did you mean cranfield\?\)"):
        load_eval_dataset("cranfeld")
    with pytest.raises(DatasetError, match="unknown dataset id 'beir/nosuch'$") as info:
        load_eval_dataset("beir/nosuch")
    assert info.value.field == "dataset"


def test_loose_files_are_packed_into_the_archive_ir_datasets_expects(data_dir, tmp_path, monkeypatch) -> None:
    import tarfile

    from tessera.data.irds import place_local_copies

    local = tmp_path / "data" / "cranfield"
    local.mkdir(parents=True)
    for name in ("cran.all.1400", "cran.qry", "cranqrel"):
        (local / name).symlink_to(data_dir / "cranfield" / name)
    monkeypatch.setenv("TESSERA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IR_DATASETS_HOME", str(tmp_path / "home"))
    place_local_copies("cranfield")
    with tarfile.open(tmp_path / "home" / "cranfield" / "cran.tar.gz") as archive:
        assert sorted(archive.getnames()) == ["cran.all.1400", "cran.qry", "cranqrel"]
        packed = archive.extractfile("cranqrel").read()
    assert packed == (data_dir / "cranfield" / "cranqrel").read_bytes()


def test_queries_come_from_a_file_or_a_dataset_split(data_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "topics.tsv"
    path.write_text("t1\tunjudged query about wings\n")
    assert load_queries(path) == {"t1": "unjudged query about wings"}
    folder = data_dir / "cranfield-beir"
    assert load_queries(folder, "train") == load_eval_dataset(folder, "train").queries


def test_qrels_with_a_byte_order_mark_keep_their_header_out(tmp_path: Path) -> None:
    path = tmp_path / "test.tsv"
    path.write_bytes(b"\xef\xbb\xbfquery-id\tcorpus-id\tscore\nq1\td1\t2\n")
    assert read_beir_qrels(path) == {"q1": {"d1": 2}}


def test_qrels_grades_are_whole_numbers_given_once(tmp_path: Path) -> None:
    path = tmp_path / "test.tsv"
    path.write_text("q1\td1\t2\nq1\td1\t2.0\n\nq2\td2\t0\n")  # a repeat of one grade and a blank line
    assert read_beir_qrels(path) == {"q1": {"d1": 2}, "q2": {"d2": 0}}
    for line, message in [
        ("q1\td1\t0.5", "score '0.5' is not a whole number"),
        ("q1\td1\tinf", "score 'inf' is not a whole number"),
        ("q1\td1\t2\nq1\td1\t0", "document 'd1' is judged 2 for query 'q1' on an earlier line and 0 here"),
    ]:
        path.write_text(line + "\n")
        with pytest.raises(DatasetError, match=message) as info:
            read_beir_qrels(path)
        assert info.value.line == line.count("\n") + 1 and info.value.field == "score"
    path.write_bytes(b"q1\tcaf\xe9\t1\n")
    with pytest.raises(TesseraError, match=r"test.tsv:1: not valid UTF-8"):
        read_beir_qrels(path)


def test_a_split_without_judgments_or_with_a_repeated_query_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    (folder / "qrels").mkdir(parents=True)
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "wing"}\n{"_id": "q2", "text": "heat"}\n')
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n")
    with pytest.raises(DatasetError, match="split 'test' holds no judgment") as info:
        load_eval_dataset(folder)
    assert info.value.file == str(folder / "qrels" / "test.tsv")
    (folder / "qrels" / "test.tsv").write_text("q1\td1\t1\n")
    assert load_eval_dataset(folder).queries == {"q1": "wing"}
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "wing"}\n{"_id": "q1", "text": "heat"}\n')
    with pytest.raises(DatasetError, match="query id 'q1' repeated") as info:
        load_eval_dataset(folder)
    assert (info.value.line, info.value.field) == (2, "_id")


def test_a_beir_folders_fingerprint_is_its_corpus_file(tmp_path: Path) -> None:
    from tessera.data.corpus import open_corpus

    folder = tmp_path / "ds"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "text": "wing flutter"}\n')
    before = open_corpus(folder).fingerprint
    (folder / "NOTES.md").write_text("notes")  # queries, judgments and notes are not documents
    (folder / "qrels" / "test.tsv").write_text("q1\td1\t1\n")
    assert open_corpus(folder).fingerprint == before
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "text": "wing flutter at speed"}\n')
    assert open_corpus(folder).fingerprint != before
