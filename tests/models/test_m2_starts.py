"""The starts of a fresh M2 model: MiniLM's word embeddings, and near-identity layers."""

from __future__ import annotations

import pytest
import torch

from tessera.models.m2 import (
    M2Config,
    M2Model,
    build_sentence_transformer,
    init_from_minilm,
    init_near_identity,
)

LONG = " ".join(f"word{i} and some more text about retrieval" for i in range(150))


def test_init_from_minilm_copies_word_embeddings() -> None:
    from safetensors import safe_open

    from tessera.models.bundled import bundled_path

    model = M2Model(M2Config(hidden=384, layers=1, max_length=64, filter_order=4))
    init_from_minilm(model)
    with safe_open(str(bundled_path("minilm") / "model.safetensors"), framework="pt") as f:
        minilm = f.get_tensor("embeddings.word_embeddings.weight")
    assert torch.equal(model.embeddings.word_embeddings.weight, minilm)
    with pytest.raises(ValueError):
        init_from_minilm(M2Model(M2Config(hidden=32, layers=1, max_length=64, filter_order=4)))


def test_near_identity_init_starts_as_a_bag_of_word_embeddings() -> None:
    """After `init_near_identity` the long filters are zero, their decay spans 4 tokens to the
    whole length, and a 2-layer model's text vectors are close to the mean of its own input
    embeddings (the bag it starts from); the published initialisation scrambles them."""
    texts = ["shock waves on a cone", "heat transfer in laminar boundary layers", LONG]

    def vectors(near_identity: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(the model's text vectors, the mean of its own input embeddings per text)"""
        torch.manual_seed(0)
        st = build_sentence_transformer(
            M2Config(hidden=384, layers=2, max_length=4096, filter_order=8), max_seq_length=1024
        )
        init_from_minilm(st)
        if near_identity:
            init_near_identity(st)
        features = st[0].preprocess(texts)
        with torch.no_grad():
            tokens = st[0].model.embeddings(features["input_ids"])
        mask = features["attention_mask"][..., None].float()
        return st.encode(texts, convert_to_tensor=True), (tokens * mask).sum(1) / mask.sum(1)

    cos = torch.nn.functional.cosine_similarity
    started, bag = vectors(True)
    assert float(cos(started, bag).min()) > 0.95
    published, bag = vectors(False)
    assert float(cos(published, bag).max()) < 0.5

    model = M2Model(M2Config(hidden=16, layers=1, max_length=1024, filter_order=4, monarch_blocks=4))
    init_near_identity(model)
    filt = model.layers[0].mixer.filter_fn
    assert torch.count_nonzero(filt.conv_kernel(1024)) == 0
    t = filt.pos_emb.t[:, [0, 4, 1023]]  # lags 0, 4 and 1023 (t is lag / (max_length - 1))
    decay = torch.exp(-t * filt.modulation.deltas.abs())[0]  # (3, channels)
    assert float(decay[1, 0]) == pytest.approx(0.01, rel=0.01)  # fastest channel: 1% after 4 tokens
    assert float(decay[2, -1]) == pytest.approx(0.01, rel=0.01)  # slowest: 1% after the whole length
