"""Dense, ColBERT and XTR training: tiny real runs that learn, save, load, resume; the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import TrainerCallback

from tessera.errors import EncoderError, TesseraError
from tessera.training.dense import train_dense
from tessera.training.multivector import train_multivector
from tests.conftest import run_cli

pytestmark = pytest.mark.usefixtures("one_thread")

# One batch of 8 rows, seen again at every step: its loss must fall.
TINY = {"max_length": 32, "batch_size": 8, "show_progress": False, "save_steps": 100}
LEARN = {**TINY, "pairs": "qrels", "negatives": "none", "max_steps": 4, "warmup": 0.0, "logging_steps": 1}


def _losses(output: Path) -> list[float]:
    return [loss for _, loss in json.loads((output / "training.json").read_text())["losses"]]


def test_dense_training_lowers_the_loss_and_saves_a_model(tiny: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    output = train_dense(tiny, tmp_path / "dense", learning_rate=1e-4, **LEARN)
    losses = _losses(output)
    assert len(losses) == 4 and losses[-1] < 0.7 * losses[0]
    assert not (tmp_path / "dense.tmp-train").exists()
    model = SentenceTransformer(str(output))
    # --max-length bounds training only: the saved model reads as far as its base (MiniLM: 256)
    assert model.encode(["shock waves"]).shape == (1, 384) and model.max_seq_length == 256
    with pytest.raises(TesseraError, match="already exists"):
        train_dense(tiny, output, **LEARN)


def test_frozen_documents_train_the_query_tower_only(tiny: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from tessera.models.bundled import bundled_path

    output = train_dense(tiny, tmp_path / "query", freeze_documents=True, learning_rate=1e-4, **LEARN)
    losses = _losses(output)
    assert losses[-1] < 0.7 * losses[0]
    assert json.loads((output / "training.json").read_text())["settings"]["freeze_documents"] is True
    trained, base = SentenceTransformer(str(output)), SentenceTransformer(str(bundled_path("minilm")))
    text = ["the flow about a blunt body at hypersonic speeds"]
    # Documents embed exactly as the base model embeds them, longer ones than the 32 training
    # tokens too (the saved model reads 256 again); queries moved.
    long = [" ".join(["the boundary layer on a flat plate at high mach numbers"] * 8)]
    for docs in (text, long):
        assert abs(trained.encode_document(docs) - base.encode_document(docs)).max() < 1e-5
    assert abs(trained.encode_query(text) - base.encode_query(text)).max() > 1e-3
    assert trained.get_embedding_dimension() == 384

    with pytest.raises(EncoderError, match="already has a query tower"):
        train_dense(tiny, tmp_path / "again", base=output, freeze_documents=True, **LEARN)
    assert not list(tmp_path.glob("again*"))
    # Without the flag, both routes of that model train on.
    again = train_dense(tiny, tmp_path / "again", base=output, **{**LEARN, "max_steps": 1})
    moved = SentenceTransformer(str(again)).encode_document(text)
    assert abs(moved - base.encode_document(text)).max() > 1e-4


class _Interrupt(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == 2:
            raise KeyboardInterrupt  # as Ctrl-C right after the second checkpoint


class _Steps(TrainerCallback):
    def __init__(self) -> None:
        self.began_at: int | None = None
        self.steps: list[int] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.began_at = state.global_step

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)


def test_an_interrupted_run_resumes_from_its_checkpoint(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TESSERA_CACHE_DIR", str(tmp_path / "cache"))
    run = {**TINY, "pairs": "qrels,titles", "negatives": "bm25", "batch_size": 4, "max_steps": 3}
    run["save_steps"] = run["logging_steps"] = 1
    output, work = tmp_path / "dense", tmp_path / "dense.tmp-train"
    with pytest.raises(KeyboardInterrupt):
        train_dense(tiny, output, callbacks=[_Interrupt()], **run)
    assert not output.exists() and (work / "checkpoint-2").is_dir()
    assert list((tmp_path / "cache" / "negatives").glob("*-bm25*"))  # the BM25 index, built once
    rows = [json.loads(line) for line in (work / "examples.jsonl").open()]
    assert rows and all(row["negative"] not in (row["positive"],) for row in rows)

    with pytest.raises(TesseraError, match=r"other settings \(seed\)"):
        train_dense(tiny, output, **{**run, "seed": 1})

    steps = _Steps()
    train_dense(tiny, output, callbacks=[steps], **run)
    assert steps.began_at == 2 and steps.steps == [3]  # resumed, not started over
    assert not work.exists()
    record = json.loads((output / "training.json").read_text())
    assert record["steps"] == 3 and record["examples"]["qrels"] == 8 and record["rows"] == len(rows)
    assert [step for step, _ in record["losses"]] == [1, 2, 3]  # the first process's losses kept


def test_colbert_then_xtr_on_top_learn_and_load(tiny: Path, tmp_path: Path) -> None:
    from sentence_transformers import MultiVectorEncoder

    colbert = train_multivector(tiny, tmp_path / "colbert", scoring="colbert", learning_rate=1e-4, **LEARN)
    losses = _losses(colbert)
    assert losses[-1] < 0.7 * losses[0]
    model = MultiVectorEncoder(str(colbert))
    assert model.encode_query(["shock waves"])[0].shape == (32, 128)
    # --max-length 32 cut the training documents only: the saved model reads 256 tokens of each
    assert model[0].document_length == 256
    long = " ".join(["the boundary layer on a flat plate at high mach numbers"] * 8)
    assert model.encode_document([long])[0].shape[0] > 32

    xtr = train_multivector(
        tiny, tmp_path / "xtr", scoring="xtr", base=colbert, top_k=64, learning_rate=1e-4, **LEARN
    )
    losses = _losses(xtr)
    assert losses[-1] < 0.7 * losses[0]
    record = json.loads((xtr / "training.json").read_text())["settings"]
    assert record["top_k"] == 64 and record["base"] == str(colbert) and record["kind"] == "xtr"
    document = MultiVectorEncoder(str(xtr)).encode_document(["the flow about a blunt body ."])[0]
    assert document.shape[1] == 128 and 5 <= document.shape[0] <= 12  # punctuation is masked


def test_cli_train_index_eval(tiny: Path, tmp_path: Path) -> None:
    model, index = tmp_path / "model", tmp_path / "index"
    result = run_cli(
        "train", "dense", "--dataset", str(tiny), "-o", str(model), "--pairs", "qrels,titles,crop",
        "--negatives", "none", "--max-steps", "2", "--batch-size", "8", "--max-length", "32",
        "--freeze-documents",
    )  # fmt: skip
    assert "--encoder" in result.stdout and model.is_dir()
    record = json.loads((model / "training.json").read_text())
    assert record["settings"]["freeze_documents"] is True
    assert [step for step, _ in record["losses"]] == [1]  # shorter than logging_steps (10): none was kept
    run_cli("index", str(tiny), "-o", str(index), "--encoder", str(model))
    metrics_file = tmp_path / "m.json"
    run_cli("eval", str(index), "--dataset", str(tiny), "--split", "train", "--json", str(metrics_file))
    metrics = json.loads(metrics_file.read_text())
    assert 0.5 < metrics["nDCG@10"] <= 1.0


def test_cli_train_xtr_takes_top_k_and_precision(tiny: Path, tmp_path: Path) -> None:
    model = tmp_path / "xtr"
    result = run_cli(
        "train", "xtr", "--dataset", str(tiny), "-o", str(model), "--pairs", "qrels", "--negatives", "none",
        "--max-steps", "1", "--batch-size", "8", "--max-length", "32", "--top-k", "16", "--precision", "fp32",
    )  # fmt: skip
    assert f"--encoder xtr:{model}" in " ".join(result.stdout.split())
    settings = json.loads((model / "training.json").read_text())["settings"]
    assert settings["top_k"] == 16 and settings["precision"] == "fp32" and settings["bf16"] is False
    refused = run_cli(
        "train", "colbert", "--dataset", str(tiny), "-o", str(tmp_path / "c"), "--top-k", "16", check=False
    )
    assert refused.returncode != 0 and "top-k" in refused.stderr  # XTR's option only
    refused = run_cli(
        "train", "xtr", "--dataset", str(tiny), "-o", str(tmp_path / "x"), "--freeze-documents", check=False
    )
    assert refused.returncode != 0 and "freeze-documents" in refused.stderr  # dense only


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "no-such-collection"], "no-such-collection"),
        (["--split", "dev"], "no split 'dev'"),
        (["--dataset", "cranfield"], "no 'train' split"),  # ir_datasets' qrels hold the test queries
        (["--pairs", "qrels,clicks"], "unknown pair source 'clicks'"),
        (["--negatives", "elastic"], "field 'negatives'"),
        (["--loss", "triplet"], "unknown loss 'triplet'"),
        (["--precision", "fp16"], "field 'precision'"),
        (["--base", "no-such-model"], "field 'base'"),
        # nan fails every comparison: it once passed the checks and failed deep in the trainer
        (["--lr", "nan"], "field 'learning_rate': must be a positive finite number"),
        (["--lr", "inf"], "field 'learning_rate': must be a positive finite number"),
        (["--scale", "0"], "field 'scale': must be a positive finite number"),
        (["--max-steps", "0"], "field 'max_steps': must be at least 1, got 0"),
    ],
)
def test_cli_bad_input_exits_1_with_one_line(
    tiny: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    command = ["train", "dense", "--dataset", str(tiny), "-o", str(tmp_path / "m"), *args]
    result = run_cli(*command, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())  # no half-made output or work folder


def test_the_loss_option_picks_the_plain_or_the_cached_class() -> None:
    from tessera.training.runner import TrainOptions, ranking_loss

    class Plain:
        def __init__(self, model, **settings):
            self.model, self.settings = model, settings

    class Cached(Plain):
        pass

    plain = ranking_loss(TrainOptions(), Plain, Cached, "model", scale=20.0)
    assert type(plain) is Plain and plain.settings == {"scale": 20.0}
    cached = ranking_loss(TrainOptions(loss="cached", mini_batch_size=8), Plain, Cached, "model", scale=1.0)
    assert type(cached) is Cached and cached.settings == {"scale": 1.0, "mini_batch_size": 8}


def test_overwrite_replaces_a_trained_model_never_other_files(tiny: Path, tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("mine")
    command = ["train", "dense", "--dataset", str(tiny), "-o", str(precious), "--overwrite"]
    result = run_cli(*command, check=False)
    assert result.returncode == 1 and "is not a trained model (no training.json)" in result.stderr
    assert (precious / "thesis.txt").read_text() == "mine" and not list(tmp_path.glob("precious.*"))
