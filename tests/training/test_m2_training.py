"""`train m2`: the M2-BERT retrieval loss, distillation rows, and both stages through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tessera.data.corpus import open_corpus
from tessera.errors import EncoderError, TesseraError
from tessera.models.m2 import M2Config, build_sentence_transformer
from tessera.training.m2 import CosineMSELoss, DistillationLoss, distillation_rows, short_text, train_m2
from tests.conftest import run_cli

TINY = {"hidden": 32, "layers": 1, "monarch_blocks": 4, "max_length": 512, "filter_order": 8}


@pytest.fixture(scope="module")
def small_split(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """150 Cranfield documents with the train and test judgments that fall on them."""
    source = data_dir / "cranfield-beir"
    folder = tmp_path_factory.mktemp("corpora") / "cranfield-small"
    (folder / "qrels").mkdir(parents=True)
    lines = (source / "corpus.jsonl").read_text().splitlines()[:150]
    (folder / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    kept = {json.loads(line)["_id"] for line in lines}
    judged: set[str] = set()
    for split in ("train", "test"):
        header, *rows = (source / "qrels" / f"{split}.tsv").read_text().splitlines()
        rows = [row for row in rows if row.split("\t")[1] in kept]
        judged |= {row.split("\t")[0] for row in rows}
        (folder / "qrels" / f"{split}.tsv").write_text("\n".join([header, *rows]) + "\n")
    queries = [
        q for q in (source / "queries.jsonl").read_text().splitlines() if json.loads(q)["_id"] in judged
    ]
    (folder / "queries.jsonl").write_text("\n".join(queries) + "\n")
    return folder


def _features(model, texts: list[str]) -> dict[str, torch.Tensor]:
    return model.preprocess(texts)


def test_cosine_mse_loss_is_the_m2_formula() -> None:
    torch.manual_seed(0)
    model = build_sentence_transformer(M2Config(**TINY), max_seq_length=64)
    texts = (["what is a shock wave", "what is lift"], ["shock waves in air", "lift of wings"])
    negatives = ["the history of ballooning", "boundary layers in water"]
    loss = CosineMSELoss(model)([_features(model, list(t)) for t in (*texts, negatives)], None)
    with torch.no_grad():
        q, p, n = (model.encode(list(t), convert_to_tensor=True) for t in (*texts, negatives))
    cos = torch.nn.functional.cosine_similarity
    expected = ((cos(q, p) - 1) ** 2).mean() + (cos(q, n) ** 2).mean()
    assert float(loss.detach()) == pytest.approx(float(expected), abs=1e-5)


def test_a_training_step_lowers_the_loss() -> None:
    torch.manual_seed(0)
    model = build_sentence_transformer(M2Config(**TINY), max_seq_length=64)
    loss_fn = CosineMSELoss(model)
    batch = [["pressure distribution on a cone"], ["the pressure on cones in supersonic flow"], ["birds"]]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        loss = loss_fn([_features(model, t) for t in batch], None)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]


def test_distillation_loss_is_distance_plus_in_batch_contrast() -> None:
    torch.manual_seed(0)
    model = build_sentence_transformer(M2Config(**TINY), max_seq_length=64)
    texts = ["what is a shock wave", "lift of wings", "boundary layers in water"]
    teacher = torch.nn.functional.normalize(torch.randn(3, 32), dim=-1)
    loss = DistillationLoss(model)([_features(model, texts)], teacher)
    with torch.no_grad():
        student = model.encode(texts, convert_to_tensor=True)
    distance = ((student - teacher) ** 2).sum(-1).mean()
    logits = student @ teacher.T / 0.05  # the student is normalised already
    contrast = torch.nn.functional.cross_entropy(logits, torch.arange(3))
    assert float(loss.detach()) == pytest.approx(float(distance + contrast), abs=1e-4)
    single = DistillationLoss(model)([_features(model, texts[:1])], teacher[:1])
    assert float(single.detach()) == pytest.approx(float(((student[0] - teacher[0]) ** 2).sum()), abs=1e-4)


def test_short_text_is_the_title_or_the_first_sentence() -> None:
    assert short_text("Shock waves ", "body") == "Shock waves"
    assert short_text("", "Heat transfer on cones. Measured at Mach 3.\nMore.") == "Heat transfer on cones."
    assert short_text("", "no full stop here\nsecond line") == "no full stop here"


def test_distillation_rows_short_and_long_with_minilm_targets(small_split: Path) -> None:
    from tessera.models.registry import load_encoder

    corpus = open_corpus(small_split)
    rows, counts = distillation_rows(corpus, max_length=1024, seed=3, docs=40)
    assert counts["documents"] == 40 and counts["short"] == 40 and 8 <= counts["long"] <= 10
    assert len(rows) == 80 + counts["long"]
    again, _ = distillation_rows(corpus, max_length=1024, seed=3, docs=40)
    assert again == rows
    texts = {doc.contents for doc in corpus}
    titles = {doc.title.strip() for doc in corpus}
    whole = [row for row in rows if row["text"] in texts]
    short = [row for row in rows if row["text"] in titles]
    long = [row for row in rows if row["text"] not in texts | titles]
    assert len(whole) == 40 and len(short) == 40 and len(long) == counts["long"]
    minilm = load_encoder("minilm")
    for kind in (whole, short):
        np.testing.assert_allclose(
            minilm.encode_docs([row["text"] for row in kind[:5]]),
            [row["label"] for row in kind[:5]],
            atol=1e-5,
        )
    sizes = [len(minilm.tokenizer(row["text"])["input_ids"]) for row in long]
    assert max(sizes) <= 1024 and sum(sizes) / len(sizes) > 512  # drawn between 256 and 1024
    for row in long:
        assert np.linalg.norm(row["label"]) == pytest.approx(1.0, abs=1e-5)


def test_train_m2_both_stages_then_index_and_search(small_split: Path, tmp_path: Path) -> None:
    out = tmp_path / "m2"
    common = ["--layers", "1", "--max-length", "1024", "--distill-docs", "16", "--max-steps", "3"]
    result = run_cli("train", "m2", "--dataset", str(small_split), "-o", str(out), "--stage", "both", *common)
    assert "m2:" in result.stdout
    distilled = json.loads((tmp_path / "m2.distilled" / "training.json").read_text())
    record = json.loads((out / "training.json").read_text())
    examples = distilled["examples"]
    assert distilled["kind"] == "m2-distill" and examples["documents"] == examples["short"] == 16
    assert 2 <= examples["long"] <= 4
    assert distilled["settings"]["init"] == "near-identity"
    assert 3 <= distilled["steps"] <= 36  # at most 36 rows in batches of up to 16 of similar length
    assert record["kind"] == "m2" and record["steps"] == 3 and record["settings"]["split"] == "train"
    assert record["settings"]["base"] == str((tmp_path / "m2.distilled").resolve())
    index = tmp_path / "index"
    run_cli("index", str(small_split / "corpus.jsonl"), "-o", str(index), "--encoder", f"m2:{out}")
    hits = json.loads(run_cli("search", str(index), "shock waves", "--json", "-k", "3").stdout)
    assert len(hits) == 3
    from tessera.models.registry import load_encoder

    assert load_encoder(f"m2:{out}").max_tokens == 32768  # whole documents, not the training length


def test_train_m2_refusals(small_split: Path, tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="give --base"):
        train_m2(small_split, tmp_path / "x", stage="finetune")
    (tmp_path / "taken").mkdir()
    with pytest.raises(TesseraError, match="already exists"):  # refused before stage 1 runs
        train_m2(small_split, tmp_path / "taken")
    with pytest.raises(TesseraError, match="unknown stage"):
        train_m2(small_split, tmp_path / "x", stage="pretrain")
    result = run_cli(
        "train",
        "m2",
        "--dataset",
        str(small_split),
        "-o",
        str(tmp_path / "y"),
        "--stage",
        "finetune",
        check=False,
    )
    assert result.returncode != 0 and "base" in result.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    assert not (tmp_path / "taken.distilled").exists()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(TesseraError, match="is not a trained model"):  # --overwrite replaces models only
        train_m2(small_split, tmp_path / "taken", stage="both", overwrite=True)
    for options, field in [
        ({"layers": 0}, "layers"),
        ({"distill_docs": -5}, "distill_docs"),  # a slice would have dropped the last five
        ({"distill_epochs": 0.0}, "distill_epochs"),
        ({"max_length": 2}, "max_length"),
        ({"max_length": 40000}, "max_length"),
    ]:
        with pytest.raises(TesseraError) as info:
            train_m2(small_split, tmp_path / "z", **options)
        assert info.value.field == field
    assert not (tmp_path / "z").exists() and (tmp_path / "taken" / "notes.txt").is_file()


def test_train_m2_runs_stage_one_alone_by_default(small_split: Path, tmp_path: Path) -> None:
    out = tmp_path / "m2"
    run_cli(
        "train", "m2", "--dataset", str(small_split), "-o", str(out), "--layers", "1", "--distill-docs", "8"
    )
    record = json.loads((out / "training.json").read_text())
    assert record["kind"] == "m2-distill" and record["settings"]["init"] == "near-identity"
    assert not (tmp_path / "m2.distilled").exists()
