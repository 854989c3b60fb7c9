"""M2-BERT (Monarch Mixer) encoder: attention-free, sub-quadratic, up to 32k tokens per text."""

from tessera.models.m2.encoder import M2Encoder, load_m2_sentence_transformer
from tessera.models.m2.filters import ImplicitLongFilter, fft_long_conv
from tessera.models.m2.mixer import MonarchMixerSequenceMixer
from tessera.models.m2.model import (
    M2Config,
    M2Model,
    M2Transformer,
    build_sentence_transformer,
)
from tessera.models.m2.monarch import BlockDiagonalLinear
from tessera.models.m2.starts import init_from_minilm, init_near_identity

__all__ = [
    "BlockDiagonalLinear",
    "ImplicitLongFilter",
    "M2Config",
    "M2Encoder",
    "M2Model",
    "M2Transformer",
    "MonarchMixerSequenceMixer",
    "build_sentence_transformer",
    "fft_long_conv",
    "init_from_minilm",
    "init_near_identity",
    "load_m2_sentence_transformer",
]
