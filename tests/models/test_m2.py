"""M2-BERT (Monarch Mixer) encoder: exact convolutions, padding invariance, save/load, published layout."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from tessera.errors import EncoderError
from tessera.models.m2 import (
    BlockDiagonalLinear,
    ImplicitLongFilter,
    M2Config,
    M2Model,
    MonarchMixerSequenceMixer,
    build_sentence_transformer,
    fft_long_conv,
)
from tessera.models.m2.checkpoint import (
    config_from_published,
    load_published_state_dict,
    to_published_state_dict,
)

TINY = dict(hidden=32, layers=2, max_length=4096, filter_order=8)
SHORT = "the quick brown fox jumps over the lazy dog"
LONG = " ".join(f"word{i} and some more text about retrieval" for i in range(150))


def tiny_model(seed: int = 0, **overrides) -> M2Model:
    torch.manual_seed(seed)
    return M2Model(M2Config(**{**TINY, **overrides})).eval()


@pytest.fixture(scope="module")
def tiny_st():
    torch.manual_seed(0)
    return build_sentence_transformer(M2Config(**TINY), max_seq_length=1024)


def direct_conv(u: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Causal linear convolution per channel, truncated to the input length."""
    length = u.shape[-1]
    out = np.zeros_like(u)
    for b in range(u.shape[0]):
        for c in range(u.shape[1]):
            out[b, c] = np.convolve(u[b, c], k[c])[:length]
    return out


def test_fft_long_conv_equals_direct_linear_convolution() -> None:
    rng = np.random.default_rng(0)
    u = rng.standard_normal((2, 3, 37))
    k = rng.standard_normal((3, 37))
    bias = rng.standard_normal(3)
    got = fft_long_conv(torch.tensor(u), torch.tensor(k), torch.tensor(bias)).numpy()
    want = direct_conv(u, k) + u * bias[None, :, None]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_bidirectional_kernel_is_causal_plus_anticausal() -> None:
    rng = np.random.default_rng(1)
    length = 29
    u = rng.standard_normal((1, 2, length))
    fwd, rev = rng.standard_normal((2, length)), rng.standard_normal((2, length))
    kernel = torch.tensor(np.concatenate([fwd, rev[:, ::-1]], axis=-1).copy())
    got = fft_long_conv(torch.tensor(u), kernel, None).numpy()
    # future token s > t weighs rev[s - t - 1]: the reverse filter over the flipped sequence
    flipped = direct_conv(u[..., ::-1].copy(), np.concatenate([np.zeros((2, 1)), rev[:, :-1]], axis=1))
    want = direct_conv(u, fwd) + flipped[..., ::-1]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_fft_long_conv_runs_in_float32_under_bf16_autocast() -> None:
    u = torch.randn(1, 4, 64).bfloat16()
    k = torch.randn(4, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = fft_long_conv(u, k, torch.ones(4))
    assert y.dtype == torch.bfloat16
    ref = fft_long_conv(u.float(), k, torch.ones(4))
    assert torch.allclose(y.float(), ref, rtol=2e-2, atol=5e-2)


def test_block_diagonal_multiply_equals_its_dense_matrix() -> None:
    torch.manual_seed(0)
    layer = BlockDiagonalLinear(32, 48, blocks=4)
    x = torch.randn(3, 5, 32)
    dense = layer.dense_weight()
    assert dense.shape == (48, 32)
    assert torch.allclose(layer(x), x @ dense.T + layer.bias, atol=1e-5)
    assert dense[:12, 8:].abs().sum() == 0  # off-diagonal blocks are structurally zero
    with pytest.raises(ValueError):
        BlockDiagonalLinear(30, 48, blocks=4)


def test_kernel_at_a_lag_does_not_depend_on_length() -> None:
    torch.manual_seed(0)
    filt = ImplicitLongFilter(8, l_max=1024, order=8, emb_dim=5)
    with torch.no_grad():
        assert torch.equal(filt.kernel(700)[:, :300], filt.kernel(300))
        assert torch.equal(filt.kernel_rev(700)[:, :300], filt.kernel_rev(300))


def test_padding_does_not_change_a_texts_embedding(tiny_st) -> None:
    alone = tiny_st.encode([SHORT], convert_to_numpy=True)[0]
    batched = tiny_st.encode([LONG, SHORT], batch_size=2, convert_to_numpy=True)
    assert len(tiny_st.tokenizer(LONG)["input_ids"]) > 10 * len(tiny_st.tokenizer(SHORT)["input_ids"])
    assert float(alone @ batched[1]) > 0.9999
    assert np.abs(alone - batched[1]).max() < 1e-5


def test_token_states_ignore_padding_at_model_level() -> None:
    model = tiny_model()
    ids = torch.randint(1000, 2000, (1, 50))
    with torch.no_grad():
        ref = model(ids, torch.ones_like(ids))
        padded = torch.cat([ids, torch.randint(1000, 2000, (1, 333))], dim=1)  # junk, not pad ids
        mask = torch.zeros_like(padded)
        mask[:, :50] = 1
        out = model(padded, mask)[:, :50]
    assert (out - ref).abs().max() < 1e-4


def test_filter_fft_cache_is_used_in_eval_and_gives_identical_output() -> None:
    model = tiny_model()
    mixer: MonarchMixerSequenceMixer = model.layers[0].mixer
    ids = torch.randint(1000, 2000, (2, 70))
    mask = torch.ones_like(ids)
    uncached = model(ids, mask).detach()  # grad enabled: no cache
    assert len(mixer._fft_cache) == 0
    with torch.no_grad():
        first = model(ids, mask)
        assert len(mixer._fft_cache) == 2  # filter_fn and filter_fn2 at one length
        calls = []
        original = mixer.filter_fn.kernel_fft
        mixer.filter_fn.kernel_fft = lambda n: calls.append(n) or original(n)
        second = model(ids, mask)
        assert calls == []  # served from the cache
        del mixer.filter_fn.kernel_fft
        assert torch.equal(first, second)
        assert torch.allclose(first, uncached, atol=1e-6)
        mixer.filter_fn.bias.add_(1.0)  # in-place change -> cache miss
        assert not torch.allclose(model(ids, mask), first)
    model.train()
    assert len(mixer._fft_cache) == 0


def test_save_and_load_folder_round_trip(tiny_st, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from tessera.models.m2 import load_m2_sentence_transformer

    tiny_st.save(str(tmp_path))
    assert (tmp_path / "model.safetensors").exists()
    assert not list(tmp_path.rglob("*.bin"))
    assert (tmp_path / "tokenizer.json").exists()
    loaded = SentenceTransformer(str(tmp_path), trust_remote_code=True, device="cpu")
    assert loaded.max_seq_length == 1024
    texts = [SHORT, LONG]
    np.testing.assert_array_equal(tiny_st.encode(texts), loaded.encode(texts))
    checked = load_m2_sentence_transformer(tmp_path)
    np.testing.assert_array_equal(tiny_st.encode(texts), checked.encode(texts))
    loaded.max_seq_length = 4096
    with pytest.raises(ValueError):
        loaded.max_seq_length = 4097


def test_max_seq_length_up_to_32k() -> None:
    from tessera.models.m2 import M2Transformer

    module = M2Transformer(M2Config(hidden=32, layers=1, filter_order=8))
    assert module.max_seq_length == 2048
    module.max_seq_length = 32768
    features = module.preprocess(["word " * 40000])
    assert features["input_ids"].shape == (1, 32768)
    assert M2Transformer(M2Config(hidden=32, layers=1, max_length=512, filter_order=8)).max_seq_length == 512


def test_published_layout_round_trip(tmp_path: Path) -> None:
    model = tiny_model(seed=3, pooler="mean", use_position_embeddings=True, max_length=512)
    state = to_published_state_dict(model)
    layer = "bert.encoder.layer.1"
    for name, shape in {
        "bert.embeddings.word_embeddings.weight": (30522, 32),
        "bert.embeddings.token_type_embeddings.weight": (2, 32),
        "bert.embeddings.position_embeddings.weight": (512, 32),
        "bert.embeddings.LayerNorm.weight": (32,),
        f"{layer}.attention.in_linear.weight": (96, 32),
        f"{layer}.attention.out_linear.bias": (32,),
        f"{layer}.attention.short_filter.weight": (96, 1, 3),
        f"{layer}.attention.filter_fn.bias": (32,),
        f"{layer}.attention.filter_fn.pos_emb.z": (1, 512, 5),
        f"{layer}.attention.filter_fn.pos_emb.t": (1, 512, 1),
        f"{layer}.attention.filter_fn.implicit_filter.0.weight": (8, 5),
        f"{layer}.attention.filter_fn.implicit_filter.1.freq": (1, 8),
        f"{layer}.attention.filter_fn.implicit_filter.6.weight": (32, 8),
        f"{layer}.attention.filter_fn.implicit_filter_rev.4.bias": (8,),
        f"{layer}.attention.filter_fn.modulation.deltas": (1, 1, 32),
        f"{layer}.attention.filter_fn2.implicit_filter_rev.6.weight": (32, 8),
        f"{layer}.mlp.gated_layers.weight": (4, 64, 8),
        f"{layer}.mlp.wo.weight": (4, 8, 32),
        f"{layer}.mlp.wo.bias": (32,),
        f"{layer}.mlp.layernorm.weight": (32,),
        "bert.pooler.dense.weight": (32, 32),
    }.items():
        assert tuple(state[name].shape) == shape, name
    assert f"{layer}.attention.filter_fn.implicit_filter.6.bias" not in state
    assert "bert.embeddings.position_ids" in state
    save_file(state, str(tmp_path / "model.safetensors"))
    loaded = load_published_state_dict(load_file(str(tmp_path / "model.safetensors")), model.config)
    ids = torch.randint(1000, 2000, (2, 40))
    mask = torch.ones_like(ids)
    mask[1, 25:] = 0
    with torch.no_grad():
        assert torch.equal(model(ids, mask), loaded(ids, mask))
        assert torch.equal(model.pooler(model(ids, mask), mask), loaded.pooler(loaded(ids, mask), mask))
    state.pop(f"{layer}.mlp.wo.bias")
    with pytest.raises(ValueError, match="missing"):
        load_published_state_dict(state, model.config)


def test_published_config_maps_to_m2config() -> None:
    published = {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "intermediate_size": 3072,
        "vocab_size": 30528,
        "monarch_mixer_sequence_mixing": True,
        "long_conv_l_max": 32768,
        "max_position_embeddings": 32768,
        "hyena_filter_order": 128,
        "hyena_emb_dim": 5,
        "hyena_w": 10,
        "bidirectional": True,
        "residual_long_conv": True,
        "use_glu_mlp": True,
        "use_monarch_mlp": True,
        "monarch_mlp_nblocks": 4,
        "use_positional_encodings": True,
        "hyena_training_additions": False,
        "pool_all": True,
        "hidden_dropout_prob": 0.1,
    }
    config = config_from_published(published)
    assert (config.hidden, config.layers, config.intermediate, config.max_length) == (768, 12, 3072, 32768)
    assert (config.filter_order, config.filter_emb_dim, config.vocab_size) == (128, 5, 30528)
    assert config.use_position_embeddings and config.residual_long_conv and config.pooler == "mean"
    assert config.dropout == 0.0
    with pytest.raises(ValueError):
        config_from_published({**published, "monarch_mixer_sequence_mixing": False})


def test_no_attention_anywhere() -> None:
    model = tiny_model()
    assert not any(isinstance(m, torch.nn.MultiheadAttention) for m in model.modules())
    for name, _ in model.named_parameters():
        assert not any(word in name.lower() for word in ("attn", "attention", "query", "key")), name


def test_m2_spec_through_the_registry(tmp_path: Path) -> None:
    from tessera.models.registry import canonical_spec, load_encoder

    torch.manual_seed(0)
    st = build_sentence_transformer(M2Config(hidden=384, layers=1, max_length=2048, filter_order=8))
    folder = tmp_path / "m2-model"
    st.save(str(folder))
    spec = f"m2:{folder}"
    assert canonical_spec(spec) == f"m2:{folder.resolve()}"
    encoder = load_encoder(spec)
    assert encoder.dim == 384 and encoder.multi_vector is False
    assert encoder.spec == canonical_spec(spec)
    docs = encoder.encode_docs([LONG, SHORT])
    queries = encoder.encode_queries([SHORT])
    assert docs.shape == (2, 384) and docs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-5)
    assert float(queries[0] @ docs[1]) > 0.9999
    with pytest.raises(EncoderError, match="no such model folder"):
        load_encoder(f"m2:{tmp_path / 'missing'}")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "modules.json").write_text(json.dumps([{"type": "x.Transformer"}]))
    with pytest.raises(EncoderError, match="not a saved M2 model"):
        load_encoder(f"m2:{tmp_path / 'other'}")
    modules = json.loads((folder / "modules.json").read_text())
    modules[1]["type"] = "evil.Module"
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(EncoderError, match="outside sentence-transformers"):
        load_encoder(f"m2:{folder}/")


def test_forward_at_32k_tokens() -> None:
    model = M2Model(M2Config(hidden=32, layers=2, max_length=32768, filter_order=8)).eval()
    ids = torch.randint(1000, 2000, (1, 32768))
    start = time.perf_counter()
    with torch.no_grad():
        out = model(ids, torch.ones_like(ids))
    assert out.shape == (1, 32768, 32) and torch.isfinite(out).all()
    assert time.perf_counter() - start < 10


def test_short_convolution_is_the_published_causal_conv1d() -> None:
    mixer = MonarchMixerSequenceMixer(16, l_max=256, filter_order=4)
    z = torch.randn(2, 40, 48)
    with torch.no_grad():
        want = mixer.short_filter(z.transpose(1, 2))[..., :40].transpose(1, 2)
        assert torch.allclose(mixer._short_conv(z), want, atol=1e-6)


def test_training_step_reaches_the_filters_and_runs_under_bf16_autocast() -> None:
    model = tiny_model().train()
    ids = torch.randint(1000, 2000, (2, 90))
    mask = torch.ones_like(ids)
    mask[1, 60:] = 0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(ids, mask)
    assert torch.isfinite(out).all()
    out.float().pow(2).mean().backward()
    mixer = model.layers[0].mixer
    for param in (
        mixer.filter_fn.implicit_filter[0].weight,
        mixer.filter_fn.implicit_filter_rev[6].weight,
        mixer.filter_fn.pos_emb.z,
        mixer.filter_fn2.bias,
        mixer.short_filter.weight,
        model.layers[0].mlp.gated_layers.weight,
    ):
        assert param.grad is not None and param.grad.abs().sum() > 0
    assert len(mixer._fft_cache) == 0


def test_a_published_folder_converts_to_an_m2_encoder_folder(tmp_path: Path) -> None:
    from tessera.models.m2.checkpoint import convert_published
    from tessera.models.registry import load_encoder

    model = tiny_model(seed=5, pooler="mean", use_position_embeddings=True, max_length=512)
    published = tmp_path / "published"
    published.mkdir()
    save_file(to_published_state_dict(model), str(published / "model.safetensors"))
    config = {"hidden_size": 32, "num_hidden_layers": 2, "long_conv_l_max": 512, "hyena_filter_order": 8}
    config |= {"use_positional_encodings": True, "max_position_embeddings": 512, "pool_all": True}
    (published / "config.json").write_text(json.dumps(config))
    folder = convert_published(published, tmp_path / "converted")
    encoder = load_encoder(f"m2:{folder}")
    assert encoder.dim == 32 and encoder.max_tokens == 512
    features = encoder.model.tokenize([SHORT])
    with torch.no_grad():
        hidden = model(features["input_ids"], features["attention_mask"])
        expected = torch.nn.functional.normalize(model.pooler(hidden, features["attention_mask"]), dim=-1)
    np.testing.assert_allclose(encoder.encode_docs([SHORT]), expected.numpy(), atol=1e-5)


def test_a_folder_that_is_no_m2_model_is_named(tmp_path: Path) -> None:
    """A folder without modules.json said "modules.json's first module is None"; a file, "no
    such model folder"."""
    from tessera.errors import EncoderError
    from tessera.models.m2.encoder import check_m2_folder

    with pytest.raises(EncoderError, match="is not a saved M2 model \\(no modules.json"):
        check_m2_folder("m2:x", tmp_path)
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(EncoderError, match="is a file, not a model folder"):
        check_m2_folder("m2:x", tmp_path / "weights.bin")
