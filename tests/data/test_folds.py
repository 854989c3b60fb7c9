"""K-fold splits: virtual, a partition of the judged queries, and the train/test split at K=2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tessera.data.datasets import load_eval_dataset
from tessera.data.folds import Fold
from tessera.errors import DatasetError


@pytest.fixture(scope="module")
def medline(data_dir: Path) -> Path:
    folder = data_dir / "medline-beir"
    if not folder.is_dir():
        pytest.skip("medline-beir not in the data directory")
    return folder


def test_two_folds_are_the_train_test_split(medline: Path) -> None:
    for side in ("train", "test"):
        fold = load_eval_dataset(medline, f"fold1of2-{side}")
        split = load_eval_dataset(medline, side)
        assert fold.queries == split.queries and fold.qrels == split.qrels
        assert fold.name == f"medline-beir/fold1of2-{side}"
    assert load_eval_dataset(medline, "fold2of2-test").queries == load_eval_dataset(medline, "train").queries


def test_folds_partition_the_judged_queries(medline: Path) -> None:
    every = load_eval_dataset(medline, "all")
    tests = [load_eval_dataset(medline, f"fold{i}of3-test") for i in (1, 2, 3)]
    assert sum(len(t.queries) for t in tests) == len(every.queries) == 30
    assert set().union(*(t.queries for t in tests)) == set(every.queries)
    assert all(len(t.queries) >= 5 for t in tests)  # a hash, not a split by position
    for i, test in enumerate(tests, start=1):
        train = load_eval_dataset(medline, f"fold{i}of3-train")
        assert not set(train.queries) & set(test.queries)
        assert set(train.queries) | set(test.queries) == set(every.queries)
        assert {q: every.qrels[q] for q in train.qrels} == train.qrels


def test_a_folder_without_all_tsv_reads_train_and_test(medline: Path, tmp_path: Path) -> None:
    copy = tmp_path / "medline"
    (copy / "qrels").mkdir(parents=True)
    shutil.copy(medline / "queries.jsonl", copy / "queries.jsonl")
    for split in ("train", "test"):
        shutil.copy(medline / "qrels" / f"{split}.tsv", copy / "qrels" / f"{split}.tsv")
    assert load_eval_dataset(copy, "fold2of3-test").qrels == load_eval_dataset(medline, "fold2of3-test").qrels
    (copy / "qrels" / "train.tsv").unlink()
    with pytest.raises(DatasetError, match="train.tsv and test.tsv"):
        load_eval_dataset(copy, "fold1of3-test")


def test_a_query_judged_in_both_halves_is_refused(medline: Path, tmp_path: Path) -> None:
    copy = tmp_path / "medline"
    (copy / "qrels").mkdir(parents=True)
    shutil.copy(medline / "queries.jsonl", copy / "queries.jsonl")
    shutil.copy(medline / "qrels" / "test.tsv", copy / "qrels" / "test.tsv")
    shutil.copy(medline / "qrels" / "test.tsv", copy / "qrels" / "train.tsv")
    with pytest.raises(DatasetError, match="judged in two split files") as error:
        load_eval_dataset(copy, "fold1of2-test")
    assert "test.tsv" in str(error.value)


def test_ir_datasets_ids_take_folds(medline: Path) -> None:
    """The SMART original parsed by ir_datasets folds query for query as the BEIR copy does."""
    fold = load_eval_dataset("glasgow/medline", "fold2of3-test")
    assert fold.name == "glasgow/medline/fold2of3-test"
    assert fold.qrels == load_eval_dataset(medline, "fold2of3-test").qrels


@pytest.mark.parametrize("split", ["fold0of3-test", "fold4of3-train", "fold1of1-test"])
def test_impossible_folds_are_refused(medline: Path, split: str) -> None:
    with pytest.raises(DatasetError, match="does not exist") as error:
        load_eval_dataset(medline, split)
    assert error.value.field == "split"


def test_other_split_names_are_not_folds() -> None:
    assert Fold.parse("test") is None and Fold.parse("fold1of3") is None
    assert Fold.parse("fold2of5-train") == Fold(2, 5, "train")


def test_eval_scores_each_fold_and_the_runs_cover_every_query_once(
    cranfield_bm25: Path, data_dir: Path, tmp_path: Path
) -> None:
    from tests.conftest import run_cli

    folder = data_dir / "cranfield-beir"
    seen: list[str] = []
    for i in (1, 2):
        run = tmp_path / f"fold{i}.trec"
        run_cli(
            "eval",
            str(cranfield_bm25),
            "--dataset",
            str(folder),
            "--split",
            f"fold{i}of2-test",
            "--run",
            str(run),
        )
        queries = {line.split()[0] for line in run.read_text().splitlines()}
        assert queries == set(load_eval_dataset(folder, f"fold{i}of2-test").queries)
        seen += queries
    assert sorted(seen) == sorted(load_eval_dataset(folder, "all").queries)  # 225, each once
    assert set(load_eval_dataset(folder, "fold1of2-test").queries) == set(
        load_eval_dataset(folder, "test").queries
    )
