"""Training pairs: judged pairs keep only grades > 0; titles become queries sensibly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tessera.data.corpus import open_corpus
from tessera.data.datasets import EvalDataset, load_eval_dataset
from tessera.data.document import Document
from tessera.errors import DatasetError
from tessera.training.pairs import qrels_pairs, title_body


def test_qrels_pairs_keep_positive_grades_in_order() -> None:
    dataset = EvalDataset(
        "toy",
        queries={"q1": "wing flutter", "q2": "shock waves"},
        qrels={"q1": {"d1": 2, "d2": 0, "d3": 1}, "q2": {"d4": -1, "d5": 3}},
    )
    assert qrels_pairs(dataset) == [("wing flutter", "d1"), ("wing flutter", "d3"), ("shock waves", "d5")]


def test_qrels_pairs_name_a_judged_query_without_text() -> None:
    dataset = EvalDataset("toy", queries={}, qrels={"q9": {"d1": 1}})
    with pytest.raises(DatasetError, match="q9"):
        qrels_pairs(dataset)


def test_title_body_skips_empty_and_title_only_documents() -> None:
    docs = [
        Document(
            "a", "wing in a\nslipstream .\n  an experimental study of a wing", title="wing in a\nslipstream ."
        ),
        Document("b", "no title here", title=""),
        Document("c", "heat transfer .", title="heat  transfer ."),
        Document("d", "a body that does not repeat it", title="boundary layers"),
        Document("e", "text", title="   "),
    ]
    found = [(pair[0], doc.id) for doc in docs if (pair := title_body(doc))]
    assert found == [("wing in a slipstream .", "a"), ("boundary layers", "d")]


def test_cranfield_pairs() -> None:
    folder = Path(os.environ["TESSERA_DATA_DIR"]) / "cranfield-beir"
    if not folder.is_dir():
        pytest.skip(f"cranfield-beir not found in {folder.parent}")
    train = load_eval_dataset(folder, "train")
    pairs = qrels_pairs(train)
    assert len(pairs) == sum(1 for judged in train.qrels.values() for g in judged.values() if g > 0)
    assert {text for text, _ in pairs} <= set(train.queries.values())
    titles = [pair for doc in open_corpus(folder) if (pair := title_body(doc))]
    assert len(titles) == 1398  # two Cranfield documents have neither title nor text
    assert all("\n" not in title for title, _ in titles)
