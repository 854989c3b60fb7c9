"""The query tower's frozen document route: run once per document, in eval mode, exactly."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from sentence_transformers import SentenceTransformer  # noqa: E402

from tessera.models.bundled import bundled_path  # noqa: E402
from tessera.training.dense import _query_tower  # noqa: E402
from tessera.training.frozen_route import memoize_route  # noqa: E402

DOCS = [
    "the flow about a blunt body at hypersonic speeds",
    "boundary layer transition on a flat plate",
    "the flow about a blunt body at hypersonic speeds",  # the same document in another row
]


@pytest.fixture(scope="module")
def tower():
    model = _query_tower(str(bundled_path("minilm")), 64)  # installs the memo
    rows: list[int] = []
    transformer = model[0].sub_modules["document"][0]
    transformer.register_forward_hook(lambda m, args, out: rows.append(len(out["input_ids"])))
    return model.train(), rows  # as the trainer leaves it: dropout on


def test_documents_embed_as_the_base_model_in_eval_mode_once_each(tower) -> None:
    model, rows = tower
    base = SentenceTransformer(str(bundled_path("minilm")))
    first = model(model.preprocess(DOCS, task="document"))["sentence_embedding"]
    assert rows == [2]  # the repeated document ran once
    expected = base.encode(DOCS, convert_to_tensor=True)
    assert (first - expected).abs().max().item() < 1e-5  # no dropout: the embeddings the index gets
    # Another batch, padded to a longer row: cached rows come back unchanged, only the new one runs.
    batch = [DOCS[1], "shock waves in a real gas with dissociation and ionization at high temperature"]
    second = model(model.preprocess(batch, task="document"))["sentence_embedding"]
    assert rows == [2, 1]
    assert torch.equal(second[0], first[1])
    assert (second[1] - base.encode(batch[1:], convert_to_tensor=True)[0]).abs().max().item() < 1e-5
    assert not second.requires_grad
    assert all(m.training for m in model[0].sub_modules["document"])  # modes restored


def test_the_query_route_still_trains(tower) -> None:
    model, rows = tower
    features = model.preprocess(["hypersonic flow"], task="query")
    one, two = (model(dict(features))["sentence_embedding"] for _ in range(2))
    assert one.requires_grad and not torch.equal(one, two)  # gradients and dropout, as before
    assert len(rows) == 2  # the document route did not run


def test_a_route_with_trainable_parameters_is_refused() -> None:
    from sentence_transformers.base.modules import Router

    model = SentenceTransformer(str(bundled_path("minilm")))
    router = Router.for_query_document(list(model.children()), list(model.children()))
    with pytest.raises(ValueError, match="trainable parameters"):
        memoize_route(router)
