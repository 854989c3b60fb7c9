"""The two starts of a freshly trained M2 model: MiniLM's word embeddings, and layers that pass
their input on (a near-identity bag of those embeddings) instead of the published random start.
Published checkpoints never pass through here: a converted checkpoint keeps its own values."""

from __future__ import annotations

import math
from typing import Any

import torch

from tessera.models.m2.model import WEIGHTS_FILE, as_m2_model


def init_from_minilm(model: Any) -> None:
    """Copy the bundled all-MiniLM-L6-v2 word-embedding matrix (30522 x 384) into the M2 word
    embeddings: a trained lexical starting point for training M2 from scratch."""
    from safetensors import safe_open

    from tessera.models.bundled import bundled_path

    m2 = as_m2_model(model)
    with safe_open(str(bundled_path("minilm") / WEIGHTS_FILE), framework="pt") as weights:
        matrix = weights.get_tensor("embeddings.word_embeddings.weight")
    target = m2.embeddings.word_embeddings.weight
    if tuple(matrix.shape) != tuple(target.shape):
        raise ValueError(
            f"MiniLM word embeddings are {tuple(matrix.shape)}, the M2 model's {tuple(target.shape)}"
        )
    with torch.no_grad():
        target.copy_(matrix.to(target.dtype))


# Lags (in tokens) after which the fastest- and slowest-decaying long-filter channels keep 1%
# of their weight, for a freshly trained model (see `init_near_identity`).
FASTEST_DECAY_LAG = 4
DECAY_FLOOR = 0.01


def init_near_identity(model: Any, fastest_decay_lag: int = FASTEST_DECAY_LAG) -> None:
    """Start a fresh M2 model as (almost) a bag of its word embeddings, so training begins from a
    model that already retrieves instead of one that has to unlearn a collapsed one.

    Why: with the published initialisation, every implicit filter is close to a constant over the
    first thousands of lags (its lag features and decay are scaled to `max_length`, 32,768), about
    0.06 per lag and channel, so each layer adds a length-scaled sum of the whole document to
    every token and buries the token itself. Measured (`benchmarks/m2_start.py`, Cranfield test
    queries, 256 tokens): a fresh 6-layer model with the published start gets nDCG@10 0.020, the
    mean of MiniLM's word embeddings 0.210, the model started here 0.206.

    What it sets, per layer: the filters' output layers to zero (long-range mixing starts at
    nothing and grows where training finds it useful); the skip term of the residual long
    convolution to 1 and the mixer's out-projection to the identity (the mixer passes its input
    on); the decay rates spread over absolute lags, from 1% left after `fastest_decay_lag` tokens
    to 1% after `max_length` (log-spaced over channels: local and document-wide channels at any
    length, rather than none decaying inside a 2k-token training window); the MLP's output
    projection scaled by 0.1 (a small update on the post-LN residual). Published weights never
    pass through here: a converted checkpoint keeps its own values.
    """
    m2 = as_m2_model(model)
    length = m2.config.max_length
    lags = torch.logspace(math.log10(min(fastest_decay_lag, length)), math.log10(length), m2.config.hidden)
    deltas = (math.log(1 / DECAY_FLOOR) * length / lags)[None, None]
    with torch.no_grad():
        for layer in m2.layers:
            mixer = layer.mixer
            mixer.out_linear.weight.copy_(torch.eye(mixer.hidden))
            mixer.out_linear.bias.zero_()
            filters = [mixer.filter_fn, *([mixer.filter_fn2] if mixer.residual_long_conv else [])]
            for filt in filters:
                filt.modulation.deltas.copy_(deltas)
                for mlp in (filt.implicit_filter, getattr(filt, "implicit_filter_rev", None)):
                    if mlp is not None:
                        mlp[-1].weight.zero_()
            if mixer.residual_long_conv:
                mixer.filter_fn2.bias.fill_(1.0)
            layer.mlp.wo.weight.mul_(0.1)
