"""M2-BERT: a BERT-shaped encoder whose attention is replaced by the Monarch Mixer.

Layout follows the published M2-BERT code (HazyResearch/m2, `bert_layers.py`) so published
weights map one-to-one (see `checkpoint.py`):

    embeddings: word + token type (+ learned absolute positions if `use_position_embeddings`)
                -> LayerNorm
    each layer: h = mixer(h)                          (no residual/norm here, as published)
                h = LayerNorm(h + wo(gelu(g1(h)) * g2(h)))   (GLU MLP, block-diagonal)
    pooling:    masked mean (sentence-transformers Pooling), optionally the published
                dense+tanh pooler head.

`M2Transformer` wraps it as a sentence-transformers 6 input module (tokenizer included), so a
model saves to and loads from a plain folder with `model.safetensors`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import torch
from sentence_transformers.base.modules.input_module import InputModule
from torch import nn

from tessera.models.m2.mixer import MonarchMixerSequenceMixer
from tessera.models.m2.monarch import BlockDiagonalLinear

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "m2_config.json"
POOLERS = ("none", "mean", "cls")


@dataclass
class M2Config:
    """Architecture of an M2-BERT encoder. Defaults: a MiniLM-sized model (384 wide, 6 layers)
    reading up to 32,768 tokens."""

    vocab_size: int = 30522
    hidden: int = 384
    layers: int = 6
    mlp_ratio: int = 4
    intermediate_size: int | None = None  # None: hidden * mlp_ratio
    monarch_blocks: int = 4
    use_monarch_mlp: bool = True
    max_length: int = 32768  # filter l_max (and position table size when used)
    filter_order: int = 64  # width of the implicit filter MLP
    filter_emb_dim: int = 5  # lag features: t plus (emb_dim - 1) / 2 cos/sin pairs
    filter_w: float = 10.0  # initial frequency of the filter MLP's sine activations
    filter_w_mod: float = 1.0
    short_kernel: int = 3
    bidirectional: bool = True
    residual_long_conv: bool = True
    pre_norm: bool = False  # published `hyena_training_additions`
    use_position_embeddings: bool = False
    type_vocab_size: int = 2
    dropout: float = 0.0
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int = 0
    pooler: str = "none"  # "none": no head; "mean"/"cls": published dense+tanh pooler head

    def __post_init__(self) -> None:
        if self.pooler not in POOLERS:
            raise ValueError(f"pooler must be one of {POOLERS}, not {self.pooler!r}")
        if self.max_length < 1 or self.hidden % self.monarch_blocks:
            raise ValueError("bad M2Config: max_length must be >= 1 and hidden divisible by monarch_blocks")

    @property
    def intermediate(self) -> int:
        return self.intermediate_size or self.hidden * self.mlp_ratio

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> M2Config:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown M2Config keys: {', '.join(unknown)}")
        return cls(**values)


class M2Embeddings(nn.Module):
    """Token (and type, and optionally position) embeddings, summed and layer-normalised."""

    def __init__(self, config: M2Config) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden, padding_idx=config.pad_token_id)
        if config.use_position_embeddings:
            self.position_embeddings = nn.Embedding(config.max_length, config.hidden)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden)
        self.LayerNorm = nn.LayerNorm(config.hidden, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        h = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        if hasattr(self, "position_embeddings"):
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)
            h = h + self.position_embeddings(positions)[None]
        return self.dropout(self.LayerNorm(h))


class GatedMLP(nn.Module):
    """GLU feed-forward with block-diagonal (Monarch) matrices and a post-LN residual."""

    def __init__(self, config: M2Config) -> None:
        super().__init__()
        inner = config.intermediate
        self.intermediate = inner
        if config.use_monarch_mlp:
            self.gated_layers: nn.Module = BlockDiagonalLinear(
                config.hidden, 2 * inner, config.monarch_blocks, bias=False
            )
            self.wo: nn.Module = BlockDiagonalLinear(inner, config.hidden, config.monarch_blocks)
        else:
            self.gated_layers = nn.Linear(config.hidden, 2 * inner, bias=False)
            self.wo = nn.Linear(inner, config.hidden)
        self.act = nn.GELU(approximate="none")
        self.dropout = nn.Dropout(config.dropout)
        self.layernorm = nn.LayerNorm(config.hidden, eps=config.layer_norm_eps)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        gated, linear = self.gated_layers(h).split(self.intermediate, dim=-1)
        out = self.wo(self.dropout(self.act(gated) * linear))
        return self.layernorm(out + h)


class M2Layer(nn.Module):
    """Sequence mixing then state mixing, wired exactly as the published `BertLayer`."""

    def __init__(self, config: M2Config) -> None:
        super().__init__()
        self.mixer = MonarchMixerSequenceMixer(
            config.hidden,
            l_max=config.max_length,
            filter_order=config.filter_order,
            filter_emb_dim=config.filter_emb_dim,
            filter_w=config.filter_w,
            filter_w_mod=config.filter_w_mod,
            short_kernel=config.short_kernel,
            bidirectional=config.bidirectional,
            residual_long_conv=config.residual_long_conv,
            pre_norm=config.pre_norm,
            dropout=config.dropout,
            layer_norm_eps=config.layer_norm_eps,
        )
        self.mlp = GatedMLP(config)

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return self.mlp(self.mixer(h, mask))


class M2Pooler(nn.Module):
    """The published pooler head: mean (or first-token) pooling -> dense -> tanh."""

    def __init__(self, config: M2Config) -> None:
        super().__init__()
        self.mode = config.pooler
        self.dense = nn.Linear(config.hidden, config.hidden)
        self.activation = nn.Tanh()

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.mode == "cls":
            pooled = h[:, 0]
        else:
            weights = mask.to(h.dtype).unsqueeze(-1)
            pooled = (h * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return self.activation(self.dense(pooled))


class M2Model(nn.Module):
    """Embeddings + M2 layers (+ optional pooler head). No attention anywhere."""

    def __init__(self, config: M2Config) -> None:
        super().__init__()
        self.config = config
        self.embeddings = M2Embeddings(config)
        self.layers = nn.ModuleList(M2Layer(config) for _ in range(config.layers))
        if config.pooler != "none":
            self.pooler = M2Pooler(config)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """BERT's initialisation, applied (like the published code) to every nn.Linear,
        the filter MLPs included; block-diagonal layers keep their own fan-in scaled init."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, 0.0, std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Token states (B, L, hidden); padded positions hold values that nothing else reads."""
        if input_ids.shape[1] > self.config.max_length:
            raise ValueError(f"{input_ids.shape[1]} tokens exceed max_length {self.config.max_length}")
        h = self.embeddings(input_ids, token_type_ids)
        if attention_mask is not None and bool(attention_mask.all()):
            attention_mask = None  # nothing to zero: skip the masking multiplies
        for layer in self.layers:
            h = layer(h, attention_mask)
        return h


class M2Transformer(InputModule):
    """sentence-transformers input module: tokenizer + `M2Model`, emitting `token_embeddings`
    (and `sentence_embedding` when the model has the published pooler head)."""

    config_file_name = CONFIG_FILE
    config_keys = ["max_seq_length"]

    def __init__(
        self,
        config: M2Config | dict[str, Any] | None = None,
        max_seq_length: int | None = None,
        tokenizer_path: str | Path | None = None,
        tokenizer: Any = None,
    ) -> None:
        super().__init__()
        if not isinstance(config, M2Config):
            config = M2Config.from_dict(config or {})
        self.config = config
        self.model = M2Model(config)
        if tokenizer is None:
            from transformers import AutoTokenizer

            if tokenizer_path is None:
                from tessera.models.bundled import bundled_path

                tokenizer_path = bundled_path("minilm")
            tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_path))
        tokenizer.model_max_length = config.max_length
        self.tokenizer = tokenizer
        self._max_seq_length = 0
        # default 2048 tokens (raise it up to config.max_length, e.g. 32768, for long documents)
        self.max_seq_length = min(2048, config.max_length) if max_seq_length is None else max_seq_length

    @property
    def max_seq_length(self) -> int:
        return self._max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        value = int(value)
        if not 1 <= value <= self.config.max_length:
            raise ValueError(f"max_seq_length must be in 1..{self.config.max_length}, not {value}")
        self._max_seq_length = value

    def get_embedding_dimension(self) -> int:
        return self.config.hidden

    def get_config_dict(self) -> dict[str, Any]:
        return {"config": dataclasses.asdict(self.config), "max_seq_length": self.max_seq_length}

    def preprocess(
        self, inputs: list[str], prompt: str | None = None, **kwargs: Any
    ) -> dict[str, torch.Tensor]:
        texts = [str(text) for text in inputs]
        if prompt:
            texts = self._prepend_prompt(texts, prompt)
        return dict(
            self.tokenizer(
                texts,
                padding=True,
                truncation="longest_first",
                max_length=self.max_seq_length,
                return_tensors="pt",
            )
        )

    def forward(self, features: dict[str, torch.Tensor], **kwargs: Any) -> dict[str, torch.Tensor]:
        mask = features.get("attention_mask")
        if mask is None:
            mask = torch.ones_like(features["input_ids"])
            features["attention_mask"] = mask
        h = self.model(features["input_ids"], mask, features.get("token_type_ids"))
        features["token_embeddings"] = h
        if hasattr(self.model, "pooler"):
            features["sentence_embedding"] = self.model.pooler(h, mask)
        return features

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        """Config, safetensors weights (always: no pickles) and the tokenizer, in one folder."""
        os.makedirs(output_path, exist_ok=True)
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=True)
        self.save_tokenizer(output_path)

    @classmethod
    def load(
        cls,
        model_name_or_path: str,
        subfolder: str = "",
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        **kwargs: Any,
    ) -> Self:
        from safetensors.torch import load_model

        hub = dict(
            token=token, cache_folder=cache_folder, revision=revision, local_files_only=local_files_only
        )
        saved = cls.load_config(model_name_or_path, subfolder=subfolder, **hub)
        if "config" not in saved:
            raise ValueError(f"{model_name_or_path}: no {CONFIG_FILE} with an M2 config")
        folder = cls.load_dir_path(model_name_or_path, subfolder=subfolder, **hub)
        module = cls(saved["config"], max_seq_length=saved.get("max_seq_length"), tokenizer_path=folder)
        weights = cls.load_file_path(model_name_or_path, WEIGHTS_FILE, subfolder=subfolder, **hub)
        if weights is None:
            raise ValueError(
                f"{model_name_or_path}: no {WEIGHTS_FILE} (M2 models are stored as safetensors only)"
            )
        load_model(module, weights, strict=True)
        return module


def build_sentence_transformer(
    config: M2Config | None = None,
    max_seq_length: int | None = None,
    normalize: bool = True,
    tokenizer_path: str | Path | None = None,
) -> Any:
    """A fresh `SentenceTransformer([M2Transformer, Pooling(mean) | pooler head, Normalize])`."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling

    first = M2Transformer(config, max_seq_length=max_seq_length, tokenizer_path=tokenizer_path)
    modules: list[nn.Module] = [first]
    if first.config.pooler == "none":
        modules.append(Pooling(first.config.hidden, pooling_mode="mean"))
    if normalize:
        modules.append(Normalize())
    return SentenceTransformer(modules=modules, device="cpu")


def as_m2_model(model: Any) -> M2Model:
    """The M2Model inside `model` (itself, an M2Transformer, or a SentenceTransformer around one)."""
    if isinstance(model, M2Model):
        return model
    if isinstance(model, M2Transformer):
        return model.model
    first = model[0] if hasattr(model, "__getitem__") else None
    if isinstance(first, M2Transformer):
        return first.model
    raise TypeError(
        f"expected an M2Model, M2Transformer or SentenceTransformer around one, not {type(model).__name__}"
    )
