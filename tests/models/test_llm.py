"""LLM sentence embeddings: spec grammar, Token Prepending hooks, batching, an index end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tessera import Index, build_index
from tessera.errors import EncoderError
from tessera.models.causal_lm import load_causal_lm, load_tokenizer
from tessera.models.llm import (
    DEFAULT_EXIT,
    DEFAULT_LAYER,
    DEFAULT_PLACEHOLDER,
    DEFAULT_START,
    LLMEncoder,
    parse_llm_spec,
)
from tessera.models.prepending import decoder_layers, token_prepending
from tessera.models.registry import canonical_spec, load_encoder

CRANFIELD = Path(__file__).resolve().parents[3] / "shared" / "data" / "cranfield-beir" / "corpus.jsonl"
FAST = "maxlen=64"  # short inputs keep the file fast on CPU


# ------------------------------------------------------------------ spec grammar


def test_canonical_spec_names_every_option_and_round_trips():
    tp = canonical_spec("llm:smollm2+tp")
    assert tp == (
        f"llm:smollm2+tp,pool=last,layer={DEFAULT_LAYER['last']},"
        f"start={DEFAULT_START},exit={DEFAULT_EXIT},pst={DEFAULT_PLACEHOLDER},maxlen=512"
    )
    assert canonical_spec("llm:smollm2") == f"llm:smollm2,pool=last,layer={DEFAULT_LAYER['last']},maxlen=512"
    mean = canonical_spec("llm:smollm2,pool=mean,layer=10")
    assert mean == "llm:smollm2,pool=mean,layer=10,maxlen=512"
    other = canonical_spec("llm:smollm2+tp,exit=6,start=2,layer=-1,maxlen=128,pst=random")
    for spec in (tp, mean, other):
        assert canonical_spec(spec) == spec
        assert parse_llm_spec(spec) == parse_llm_spec(canonical_spec(spec))
    options = parse_llm_spec("llm:smollm2+tp,exit=6,start=2,layer=-1")
    assert (options.tp, options.start, options.exit, options.layer) == (True, 2, 6, -1)
    assert options.placeholder == DEFAULT_PLACEHOLDER and parse_llm_spec(other).placeholder == "random"


def test_stored_tp_spec_from_before_pst_keeps_its_placeholder(tmp_path):
    from tessera.indexing.manifest import Manifest

    def written(spec: str) -> None:
        """A manifest of `spec` over one file (a manifest listing none is refused)."""
        (tmp_path / "docids.txt").write_text("")
        manifest = Manifest("faiss", spec, 0, "corpus.jsonl", dim=576)
        manifest.record_files(tmp_path)
        manifest.write(tmp_path)

    old = "llm:smollm2+tp,pool=last,layer=-1,start=1,exit=4,maxlen=512"  # an index built before `pst`
    written(old)
    assert Manifest.read(tmp_path).encoder == f"{old},pst=token"
    assert parse_llm_spec(f"{old},pst=token").placeholder == "token"
    for spec in ("llm:smollm2,pool=last,layer=-1,maxlen=512", canonical_spec("llm:smollm2+tp"), "minilm"):
        written(spec)
        assert Manifest.read(tmp_path).encoder == spec  # nothing else is touched


def test_model_folder_becomes_absolute(tmp_path, monkeypatch):
    (tmp_path / "my-llm").mkdir()
    monkeypatch.chdir(tmp_path)
    spec = canonical_spec("llm:my-llm+tp")
    assert spec.startswith(f"llm:{tmp_path.resolve() / 'my-llm'}+tp,")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("llm:smollm2,pool=max", "pool must be last or mean"),
        ("llm:smollm2,layer=top", "must be an integer"),
        ("llm:smollm2,depth=3", "unknown option 'depth=3'"),
        ("llm:smollm2,layer", "unknown option 'layer'"),
        ("llm:smollm2,layer=1,layer=2", "given twice"),
        ("llm:smollm2,start=1", "add +tp"),
        ("llm:smollm2,pst=random", "add +tp"),
        ("llm:smollm2+tp,pst=zero", "pst must be one of token, random, mean"),
        ("llm:smollm2+tp,pool=mean", "+tp needs the PromptEOL prompt"),
        ("llm:smollm2+tp,start=4,exit=4", "need 0 <= start < exit"),
        ("llm:+tp", "no model named"),
        ("llm:smollm2,maxlen=0", "maxlen must be positive"),
    ],
)
def test_bad_spec_option_is_a_clear_encoder_error(spec, message):
    with pytest.raises(EncoderError) as caught:
        canonical_spec(spec)
    assert message in str(caught.value)
    assert caught.value.field == "encoder"


@pytest.mark.parametrize(
    ("spec", "message"),
    [("llm:smollm2,layer=31", "layer=31 is outside"), ("llm:smollm2+tp,exit=31", "exit=31")],
)
def test_options_past_the_model_are_refused_at_load(spec, message):
    with pytest.raises(EncoderError, match=message):
        load_encoder(spec)


# ------------------------------------------------------------------ Token Prepending hooks


def _layer_io(model, input_ids, mask, tp: tuple | None) -> tuple[list, list]:
    """Every decoder layer's input (as the layer sees it) and output, with or without TP."""
    layers = decoder_layers(model)
    inputs: list = [None] * len(layers)
    outputs: list = [None] * len(layers)
    handles = []
    positions = (mask.cumsum(1) - 1).clamp(min=0)

    def run() -> None:
        # Registered after the TP hooks, so these see the replaced inputs.
        for i, layer in enumerate(layers):
            handles.append(
                layer.register_forward_pre_hook(
                    lambda m, a, k, i=i: inputs.__setitem__(i, (a[0] if a else k["hidden_states"]).clone()),
                    with_kwargs=True,
                )
            )
            handles.append(
                layer.register_forward_hook(
                    lambda m, a, o, i=i: outputs.__setitem__(i, (o[0] if isinstance(o, tuple) else o).clone())
                )
            )
        with torch.inference_mode():
            model.base_model(
                input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=False
            )

    try:
        if tp is None:
            run()
        else:
            placeholders, start, exit = tp
            with token_prepending(model, placeholders, start, exit):
                run()
    finally:
        for handle in handles:
            handle.remove()
    return inputs, outputs


@pytest.mark.parametrize(("start", "exit"), [(1, 4), (0, 2), (3, 7)])
def test_tp_hooks_change_only_the_placeholder_at_the_chosen_layers(start, exit):
    model, tok = load_causal_lm("smollm2"), load_tokenizer("smollm2")
    head = tok("This sentence :", add_special_tokens=False).input_ids
    rows = []
    for text in ("boundary layer flow", "heat transfer to a flat plate at high speed"):
        body = tok(f' "{text}" means in one word:"', add_special_tokens=False).input_ids
        rows.append(head + [tok.unk_token_id] + body)
    width = max(map(len, rows))
    input_ids = torch.full((2, width), tok.pad_token_id)
    mask = torch.zeros((2, width), dtype=torch.long)
    placeholders = torch.zeros(2, dtype=torch.long)
    for r, ids in enumerate(rows):
        input_ids[r, width - len(ids) :] = torch.tensor(ids)
        mask[r, width - len(ids) :] = 1
        placeholders[r] = width - len(ids) + len(head)

    plain_in, _ = _layer_io(model, input_ids, mask, None)
    tp_in, tp_out = _layer_io(model, input_ids, mask, (placeholders, start, exit))
    n_layers = len(plain_in)
    for r in range(2):
        p = int(placeholders[r])
        first = width - len(rows[r])
        for i in range(n_layers):
            # Causality: nothing before the placeholder ever changes.
            torch.testing.assert_close(tp_in[i][r, first:p], plain_in[i][r, first:p], rtol=0, atol=1e-5)
            if i < start:  # before the first hooked layer, nothing at all has changed
                torch.testing.assert_close(tp_in[i][r, first:], plain_in[i][r, first:], rtol=0, atol=1e-5)
            elif i < exit:  # the placeholder carries the previous layer's last-token state
                previous_last = tp_out[i - 1][r, -1] if i > 0 else plain_in[0][r, -1]
                torch.testing.assert_close(tp_in[i][r, p], previous_last, rtol=0, atol=1e-6)
            else:  # after exit the placeholder is the model's own output again
                torch.testing.assert_close(tp_in[i][r, p], tp_out[i - 1][r, p], rtol=0, atol=1e-6)
        # ... and the change does reach the tokens after it, one layer later.
        assert not torch.allclose(tp_in[start + 1][r, p + 1 :], plain_in[start + 1][r, p + 1 :], atol=1e-4)
    # The hooks are gone after the block: a plain run is the plain run again.
    again, _ = _layer_io(model, input_ids, mask, None)
    torch.testing.assert_close(again[-1], plain_in[-1], rtol=0, atol=0)


@pytest.mark.parametrize("placeholder", ["random", "mean"])
def test_placeholder_embedding_changes_the_vector_only_through_its_own_slot(placeholder):
    """`pst=random|mean` swaps the placeholder's input embedding; with start=0 the first layer
    already overwrites that slot, so the vector is exactly the `pst=token` one."""
    text = ["the effect of wall cooling on boundary layer transition"]
    base = LLMEncoder(f"llm:smollm2+tp,pst=token,{FAST}")
    other = LLMEncoder(f"llm:smollm2+tp,pst={placeholder},{FAST}")
    table = other.model.get_input_embeddings().weight
    vector = other._placeholder_vector
    assert vector is not None and vector.shape == (other.dim,) and vector.dtype == table.dtype
    if placeholder == "mean":
        torch.testing.assert_close(vector, table.float().mean(0).to(table.dtype))
    else:  # a fixed draw: the same vector in every process
        torch.testing.assert_close(
            vector, LLMEncoder(f"llm:smollm2+tp,pst=random,{FAST}")._placeholder_vector
        )
    assert float(base.encode_queries(text)[0] @ other.encode_queries(text)[0]) < 0.9999
    from_zero = (
        LLMEncoder(f"llm:smollm2+tp,start=0,pst=token,{FAST}"),
        LLMEncoder(f"llm:smollm2+tp,start=0,pst={placeholder},{FAST}"),
    )
    np.testing.assert_allclose(
        from_zero[0].encode_queries(text), from_zero[1].encode_queries(text), atol=1e-6
    )


# ------------------------------------------------------------------ batching


@pytest.mark.parametrize(
    "spec",
    [
        f"llm:smollm2+tp,{FAST}",
        f"llm:smollm2+tp,pst=random,{FAST}",
        f"llm:smollm2,{FAST}",
        f"llm:smollm2,pool=mean,{FAST}",
    ],
)
def test_embedding_does_not_depend_on_its_batch(spec):
    encoder = load_encoder(spec)
    text = "the effect of wall cooling on boundary layer transition"
    others = [
        "heat",
        "an experimental study of a wing body junction flow at supersonic speeds with several sweep angles",
        "shock",
    ]
    alone = encoder.encode_queries([text])
    mixed = encoder.encode_docs([others[0], text, *others[1:]])
    assert alone.shape == (1, encoder.dim) and mixed.shape == (4, encoder.dim)
    assert alone.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(mixed, axis=1), 1.0, atol=1e-5)
    assert float(alone[0] @ mixed[1]) > 0.9999
    assert encoder.spec == canonical_spec(spec)


@pytest.mark.parametrize(
    "spec", [f"llm:smollm2,pool=mean,{FAST}", f"llm:smollm2,{FAST}", f"llm:smollm2+tp,{FAST}"]
)
def test_empty_text_gets_the_zero_vector(spec):
    """Corpora have empty documents: every encoder gives them the zero vector (scores 0 against
    every query; mean pooling's 0/0 was NaN, a prompt around nothing was a little like everything)."""
    vectors = load_encoder(spec).encode_docs(["", "boundary layer transition", " "])
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), [0.0, 1.0, 0.0], atol=1e-5)


# ------------------------------------------------------------------ end to end


def test_index_of_real_documents_finds_the_titled_document(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    lines = CRANFIELD.read_text(encoding="utf-8").splitlines()[:30]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    docs = [json.loads(line) for line in lines]
    target = docs[TITLE_DOC]
    spec = "llm:smollm2+tp,maxlen=32"  # the title opens each document: 32 tokens hold it
    path = build_index(corpus, tmp_path / "index", encoder=spec, show_progress=False)
    manifest = json.loads((Path(path) / "manifest.json").read_text())
    assert manifest["encoder"] == canonical_spec(spec)
    hits = Index.load(path).search(target["title"], k=3)
    assert hits[0].doc_id == target["_id"]


TITLE_DOC = 0
