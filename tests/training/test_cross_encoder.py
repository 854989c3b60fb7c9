"""Cross-encoder training: a tiny real run that learns, saves and reranks; the CLI; bad input."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest

from tessera.errors import EncoderError, TesseraError
from tessera.training.bases import resolve_base
from tessera.training.cross_encoder import (
    HEAD_LEARNING_RATE,
    LEARNING_RATE,
    NUM_NEGATIVES,
    _load,
    train_cross_encoder,
)
from tests.conftest import run_cli
from tests.training.test_encoders import LEARN, _losses

pytestmark = pytest.mark.usefixtures("one_thread")


def _training_pairs(folder: Path) -> tuple[list[str], list[str], list[str]]:
    """The tiny set's queries, their relevant documents' texts, and every document's text."""
    queries = {q["_id"]: q["text"] for q in map(json.loads, (folder / "queries.jsonl").open())}
    docs = {d["_id"]: d["text"] for d in map(json.loads, (folder / "corpus.jsonl").open())}
    qrels = [line.split("\t")[:2] for line in (folder / "qrels" / "train.tsv").read_text().splitlines()[1:]]
    return [queries[q] for q, _ in qrels], [docs[d] for _, d in qrels], list(docs.values())


def test_training_learns_to_put_each_positive_first_and_reranks(tiny: Path, tmp_path: Path) -> None:
    from sentence_transformers import CrossEncoder

    from tessera.retrieval.rerank import load_reranker

    # query and passage share max_length: 96 tokens see most of a tiny document's 60 words
    learn = {**LEARN, "max_steps": 16, "max_length": 96}
    output = train_cross_encoder(tiny, tmp_path / "ce", **learn)  # the default learning rates
    losses = _losses(output)
    assert len(losses) == 16 and losses[-1] < 0.7 * losses[0]
    record = json.loads((output / "training.json").read_text())
    settings = record["settings"]
    assert (settings["kind"], settings["num_negatives"]) == ("cross-encoder", NUM_NEGATIVES)
    assert (settings["learning_rate"], settings["head_learning_rate"]) == (LEARNING_RATE, HEAD_LEARNING_RATE)
    assert not (tmp_path / "ce.tmp-train").exists()

    model = CrossEncoder(str(output))
    assert model.num_labels == 1 and model.max_seq_length == 96
    queries, positives, documents = _training_pairs(tiny)
    reranker = load_reranker(f"cross-encoder:{output}")
    untrained = _load(resolve_base(None), 96, seed=0, new_head=True)  # where the run started

    def reciprocal_rank(scores: np.ndarray, positive: str) -> float:
        ranked = [documents[i] for i in np.argsort(-scores, kind="stable")]
        return 1 / (1 + ranked.index(positive))

    trained_rr, untrained_rr = [], []
    for query, positive in zip(queries, positives, strict=True):
        scores = reranker.score(query, documents)
        trained_rr.append(reciprocal_rank(scores, positive))
        untrained_rr.append(reciprocal_rank(untrained.predict([(query, d) for d in documents]), positive))
        # the reranker is sentence-transformers' own predict on the trained folder
        np.testing.assert_allclose(scores, model.predict([(query, d) for d in documents]), atol=1e-5)
    # 8 queries, 16 documents each
    assert np.mean(trained_rr) >= 0.75 and sum(r == 1 for r in trained_rr) >= 6
    assert np.mean(trained_rr) >= np.mean(untrained_rr) + 0.3
    with pytest.raises(TesseraError, match="already exists"):
        train_cross_encoder(tiny, output, **LEARN)

    # Trained on, a CrossEncoder keeps its head: one learning rate for all of it.
    again = train_cross_encoder(tiny, tmp_path / "again", base=output, **{**learn, "max_steps": 1})
    assert json.loads((again / "training.json").read_text())["settings"]["head_learning_rate"] is None


def test_cli_trains_and_the_model_reranks_a_search(tiny: Path, tmp_path: Path) -> None:
    model, index = tmp_path / "ce", tmp_path / "bm25"
    result = run_cli(
        "train", "cross-encoder", "--dataset", str(tiny), "-o", str(model), "--pairs", "qrels",
        "--negatives", "none", "--max-steps", "1", "--batch-size", "8", "--max-length", "32",
        "--num-negatives", "2", "--precision", "fp32", "--loss", "cached", "--mini-batch-size", "4",
    )  # fmt: skip
    assert f"--rerank cross-encoder:{model}" in " ".join(result.stdout.split())
    settings = json.loads((model / "training.json").read_text())["settings"]
    assert (settings["num_negatives"], settings["kind"], settings["bf16"]) == (2, "cross-encoder", False)
    assert (settings["loss"], settings["mini_batch_size"]) == ("cached", 4)  # GradCache trains too
    run_cli("index", str(tiny), "-o", str(index), "--encoder", "bm25")
    query = "the flow of air over a body at supersonic speed"
    plain = json.loads(run_cli("search", str(index), query, "-k", "5", "--json").stdout)
    hits = json.loads(
        run_cli(
            "search", str(index), query, "-k", "5", "--rerank", f"cross-encoder:{model}",
            "--rerank-depth", "5", "--json",
        ).stdout
    )  # fmt: skip
    assert len(plain) == 5 and {h["doc_id"] for h in hits} == {h["doc_id"] for h in plain}
    assert [h["rank"] for h in hits] == [1, 2, 3, 4, 5]
    assert all(a["score"] >= b["score"] for a, b in zip(hits, hits[1:], strict=False))


def test_cli_defaults_are_the_trainers() -> None:
    from tessera.cli import train as cli_train
    from tessera.training.multivector import TOP_K

    assert cli_train._CROSS_NEGATIVES.default == NUM_NEGATIVES
    assert cli_train._CROSS_HEAD_LR.default == HEAD_LEARNING_RATE
    assert cli_train._XTR_TOP_K.default == TOP_K
    defaults = inspect.signature(train_cross_encoder).parameters
    assert defaults["num_negatives"].default == NUM_NEGATIVES
    assert defaults["head_learning_rate"].default == HEAD_LEARNING_RATE


def test_bad_input_is_refused_before_any_work(tiny: Path, tmp_path: Path) -> None:
    with pytest.raises(TesseraError) as refused:
        train_cross_encoder(tiny, tmp_path / "a", num_negatives=0, **LEARN)
    assert refused.value.field == "num_negatives"
    late = tmp_path / "colbert"
    late.mkdir()
    (late / "config_sentence_transformers.json").write_text(json.dumps({"model_type": "MultiVectorEncoder"}))
    with pytest.raises(EncoderError, match="MultiVectorEncoder") as refused:
        train_cross_encoder(tiny, tmp_path / "b", base=late, **LEARN)
    assert refused.value.field == "base"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["colbert"]  # nothing half-made
