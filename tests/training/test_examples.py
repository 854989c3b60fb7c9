"""Training examples and hard negatives on real Cranfield: crops, sources, the rank window."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tessera.data.corpus import open_corpus
from tessera.data.datasets import load_eval_dataset
from tessera.data.document import Document
from tessera.errors import TesseraError, TesseraWarning
from tessera.retrieval.index import Index
from tessera.training.crops import crop_pairs
from tessera.training.examples import build_examples, dataset_corpus, judged_split, parse_sources
from tessera.training.negatives import check_negatives, mine_negatives
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def cranfield_docs() -> list[Document]:
    folder = Path(os.environ["TESSERA_DATA_DIR"]) / "cranfield-beir"
    if not (folder / "corpus.jsonl").is_file():
        pytest.skip(f"cranfield-beir not found in {folder.parent}")
    return list(open_corpus(folder))


def test_crops_are_seeded_spans_of_their_own_document(cranfield_docs: list[Document]) -> None:
    docs = cranfield_docs[:200]
    crops = crop_pairs(docs, seed=7)
    assert crops == crop_pairs(docs, seed=7)
    assert crops != crop_pairs(docs, seed=8)
    assert len(crops) >= 195  # only near-empty documents give none
    by_id = {doc.id: " ".join(doc.text.split()) for doc in docs}
    for crop in crops:
        words = len(by_id[crop.doc_id].split())
        for span in (crop.query, crop.positive):
            assert span in by_id[crop.doc_id]
            assert 5 <= len(span.split()) <= max(5, round(0.5 * words))
    # A document's crops depend on the seed and its id only, not on the other documents.
    assert crop_pairs(list(reversed(docs[:50])), seed=7)[::-1] == crops[:50]


def test_pair_sources_parse_and_refuse_unknown_names() -> None:
    assert parse_sources("qrels, crop,qrels") == ("qrels", "crop")
    assert parse_sources(["titles"]) == ("titles",)
    with pytest.raises(TesseraError, match="unknown pair source 'clicks'") as error:
        parse_sources("qrels,clicks")
    assert error.value.field == "pairs"
    with pytest.raises(TesseraError, match="no pair source"):
        parse_sources("")
    with pytest.raises(TesseraError, match="field 'negatives'"):
        check_negatives("elasticsearch")


def test_examples_of_every_source_on_cranfield(cranfield_docs: list[Document]) -> None:
    folder = Path(os.environ["TESSERA_DATA_DIR"]) / "cranfield-beir"
    train = load_eval_dataset(folder, "train")
    corpus = dataset_corpus(folder, "train")
    examples, counts = build_examples(("qrels", "titles", "crop"), corpus, train, seed=0)
    judged = sum(1 for grades in train.qrels.values() for grade in grades.values() if grade > 0)
    assert counts == {"qrels_missing": 0, "qrels": judged, "titles": 1398, "crop": 1398}
    assert len(examples) == judged + 2 * 1398
    first = examples[0]
    relevant = {d for d, g in train.qrels[next(iter(train.qrels))].items() if g > 0}
    assert first.source == "qrels" and first.exclude == frozenset(relevant)
    titles = [e for e in examples if e.source == "titles"]
    assert all(len(e.exclude) == 1 for e in titles)
    assert sum(e.positive.startswith(e.query) for e in titles) == 1  # one body repeats its title twice


def test_mined_negatives_are_never_judged_relevant(cranfield_bm25: Path) -> None:
    """All 225 judged Cranfield queries (ir_datasets qrels) plus title pairs, BM25 top 30."""
    data = load_eval_dataset("cranfield")
    examples, _ = build_examples(("qrels", "titles"), open_corpus("cranfield"), data)
    index = Index.load(cranfield_bm25)
    chosen = mine_negatives(index, examples, skip=0, depth=30, seed=3, show_progress=False)
    assert chosen == mine_negatives(index, examples, skip=0, depth=30, seed=3, show_progress=False)
    relevant = {
        data.queries[q]: {d for d, grade in grades.items() if grade > 0} for q, grades in data.qrels.items()
    }
    for example, negative in zip(examples, chosen, strict=True):
        assert negative is not None and negative not in example.exclude
        if example.source == "qrels":
            assert negative not in relevant[example.query]
    # The exclusion mattered: BM25 ranks judged-relevant documents inside the window.
    queries = list(relevant)
    top = index.batch_search(queries, 30)
    assert sum(hit.doc_id in relevant[q] for q, hits in zip(queries, top, strict=True) for hit in hits) > 100
    # Skipping the top ranks moves the window down.
    skipped = mine_negatives(index, examples[:50], skip=10, depth=5, seed=3, show_progress=False)
    for example, negative in zip(examples[:50], skipped, strict=True):
        ranks = [hit.doc_id for hit in index.search(example.query, 60)]
        assert 10 <= ranks.index(negative) < 10 + 5 + len(example.exclude)


def test_a_source_with_nothing_warns_and_only_an_empty_total_fails(data_dir: Path, tmp_path: Path) -> None:
    """A corpus without titles: the titles source is skipped with a warning, the others train."""
    untitled = tmp_path / "untitled.jsonl"
    with (data_dir / "medline-beir" / "corpus.jsonl").open(encoding="utf-8") as source:
        rows = [json.loads(next(source)) for _ in range(40)]
    untitled.write_text("".join(json.dumps({"_id": r["_id"], "text": r["text"]}) + "\n" for r in rows))
    corpus = open_corpus(untitled)
    with pytest.warns(TesseraWarning, match="pair source 'titles' gives no training pair; skipped"):
        examples, counts = build_examples(("titles", "ict", "crop"), corpus, None, seed=0)
    assert counts["titles"] == 0 and counts["ict"] > 30 and counts["crop"] == 40
    assert {e.source for e in examples} == {"ict", "crop"}
    assert all(e.exclude == frozenset([e.doc_id]) for e in examples)
    with (
        pytest.warns(TesseraWarning),
        pytest.raises(TesseraError, match="no pair source gives a training pair"),
    ):
        build_examples(("titles",), corpus, None)


def test_default_recipe_trains_on_a_corpus_without_titles(data_dir: Path, tmp_path: Path) -> None:
    """`train dense` with its default pairs (qrels, titles) on MEDLINE stripped of its titles."""
    folder = tmp_path / "medline-untitled"
    (folder / "qrels").mkdir(parents=True)
    source = data_dir / "medline-beir"
    with (source / "corpus.jsonl").open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": r["_id"], "text": r["text"]}) + "\n" for r in rows)
    )
    (folder / "queries.jsonl").write_text((source / "queries.jsonl").read_text())
    (folder / "qrels" / "train.tsv").write_text((source / "qrels" / "train.tsv").read_text())
    args = ("--max-steps", "1", "--batch-size", "8", "--save-steps", "100")
    result = run_cli("train", "dense", "--dataset", str(folder), "-o", str(tmp_path / "model"), *args)
    assert "warning:" in result.stderr and "pair source 'titles' gives no training pair" in result.stderr
    assert "Traceback" not in result.stderr
    record = json.loads((tmp_path / "model" / "training.json").read_text())
    assert record["examples"]["titles"] == 0 and record["examples"]["qrels"] > 0 and record["steps"] == 1


def test_synthetic_few_shot_examples_miss_a_split_quietly_but_never_a_dataset(data_dir: Path) -> None:
    folder = data_dir / "cranfield-beir"
    assert judged_split(folder, "train", ["synthetic"]).name == "cranfield-beir/train"
    assert judged_split(folder, "dev", ["synthetic"]) is None  # no such split: zero-shot
    with pytest.raises(TesseraError, match="unknown dataset id 'no-such-dataset'"):
        judged_split("no-such-dataset", "train", ["synthetic"])  # a typo is not zero-shot
    # an id without splits judges every query, test ones too: never training pairs (train jpq's too)
    with pytest.raises(TesseraError, match="'cranfield' has no 'train' split") as info:
        judged_split("cranfield", "train", ["qrels"])
    assert info.value.field == "split"


def test_the_default_pairs_train_a_bare_corpus_on_titles(data_dir: Path, tmp_path: Path) -> None:
    """`qrels,titles` on a folder holding only a corpus stopped with "not a BEIR folder": qrels is
    skipped with a warning saying why, titles train. A dataset with judgments but not of the
    split asked is still an error (a typo of the split is not trained past), saying how to
    train without them."""
    source = data_dir / "cranfield-beir"
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "corpus.jsonl").write_text((source / "corpus.jsonl").read_text())
    said = r"pair source 'qrels' gives no training pair \(not a BEIR folder"
    with pytest.warns(TesseraWarning, match=said):
        assert judged_split(bare, "train", ("qrels", "titles")) is None
    with pytest.raises(TesseraError, match="not a BEIR folder"):  # qrels alone: nothing else would train
        judged_split(bare, "train", ("qrels",))
    for typo in ("cranfeild", str(bare / "corpus.jsonl")):  # no folder: a mistake, not a bare corpus
        with pytest.raises(TesseraError):
            judged_split(typo, "train", ("qrels", "titles"))
    examples, counts = build_examples(("qrels", "titles"), dataset_corpus(bare, "train"), None)
    assert counts["qrels"] == 0 and counts["titles"] > 1000 and {e.source for e in examples} == {"titles"}
    with pytest.raises(TesseraError, match=r"no split 'dev' .*; or train without judgments: --pairs titles"):
        judged_split(source, "dev", ("qrels", "titles"))


def test_judged_pairs_of_documents_not_in_the_corpus_are_said(data_dir: Path, tmp_path: Path) -> None:
    """They were left out without a word (`qrels_missing` in training.json only)."""
    data = load_eval_dataset(data_dir / "cranfield-beir", "train")
    few = tmp_path / "few.jsonl"
    with (data_dir / "cranfield-beir" / "corpus.jsonl").open(encoding="utf-8") as source:
        few.write_text("".join(next(source) for _ in range(100)))
    said = r"judged pairs are of documents not in the corpus \(e.g. '\d+'\)"
    with pytest.warns(TesseraWarning, match=said):
        examples, counts = build_examples(("qrels",), open_corpus(few), data)
    assert counts["qrels_missing"] > 0 and counts["qrels"] == len(examples) > 0
