"""Reading and writing the state-dict layout of the published M2-BERT retrieval checkpoints
(`togethercomputer/m2-bert-80M-{2k,8k,32k}-retrieval`, code in HazyResearch/m2 `bert/src`).

Our module tree mirrors the published one below the layer level, so the mapping is a prefix
rename: `embeddings.` <-> `bert.embeddings.`, `layers.N.mixer.` <-> `bert.encoder.layer.N.attention.`
(the published name for the sequence mixer, although it holds no attention),
`layers.N.mlp.` <-> `bert.encoder.layer.N.mlp.`, `pooler.` <-> `bert.pooler.`.

Only `.safetensors` files are read (no pickles). A published `pytorch_model.bin` is converted
once by the user:
    sd = torch.load("pytorch_model.bin", weights_only=True)
    safetensors.torch.save_file({k: v.contiguous() for k, v in sd.items()}, "model.safetensors")
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from tessera.models.m2.model import M2Config, M2Model, as_m2_model

# published config.json key -> M2Config field
CONFIG_KEYS = {
    "vocab_size": "vocab_size",
    "hidden_size": "hidden",
    "num_hidden_layers": "layers",
    "intermediate_size": "intermediate_size",
    "monarch_mlp_nblocks": "monarch_blocks",
    "use_monarch_mlp": "use_monarch_mlp",
    "long_conv_l_max": "max_length",
    "hyena_filter_order": "filter_order",
    "hyena_emb_dim": "filter_emb_dim",
    "hyena_w": "filter_w",
    "hyena_w_mod": "filter_w_mod",
    "bidirectional": "bidirectional",
    "residual_long_conv": "residual_long_conv",
    "hyena_training_additions": "pre_norm",
    "use_positional_encodings": "use_position_embeddings",
    "type_vocab_size": "type_vocab_size",
    "layer_norm_eps": "layer_norm_eps",
    "initializer_range": "initializer_range",
    "pad_token_id": "pad_token_id",
}

# Published keys that hold nothing we need: the constant position-id buffer and MLM head.
IGNORED = re.compile(r"^(bert\.embeddings\.(position_ids|token_type_ids)|cls\..*)$")

_TO_PUBLISHED = [
    (re.compile(r"^embeddings\."), "bert.embeddings."),
    (re.compile(r"^layers\.(\d+)\.mixer\."), r"bert.encoder.layer.\1.attention."),
    (re.compile(r"^layers\.(\d+)\.mlp\."), r"bert.encoder.layer.\1.mlp."),
    (re.compile(r"^pooler\."), "bert.pooler."),
]
_FROM_PUBLISHED = [
    (re.compile(r"^bert\.embeddings\."), "embeddings."),
    (re.compile(r"^bert\.encoder\.layer\.(\d+)\.attention\."), r"layers.\1.mixer."),
    (re.compile(r"^bert\.encoder\.layer\.(\d+)\.mlp\."), r"layers.\1.mlp."),
    (re.compile(r"^bert\.pooler\."), "pooler."),
]


def _rename(name: str, rules: list[tuple[re.Pattern[str], str]]) -> str:
    for pattern, replacement in rules:
        renamed, count = pattern.subn(replacement, name, count=1)
        if count:
            return renamed
    raise KeyError(name)


def config_from_published(values: dict[str, Any], **overrides: Any) -> M2Config:
    """M2Config from a published `config.json` (keys it lacks keep our defaults).

    The published checkpoints always carry the BertPooler weights; `pool_all` picks mean or
    first-token input for it. Pass `pooler="none"` to use plain mean pooling instead."""
    if values.get("monarch_mixer_sequence_mixing") is False:
        raise ValueError("config.json describes an attention BERT, not an M2 (Monarch Mixer) model")
    if values.get("use_glu_mlp") is False:
        raise ValueError("only the GLU MLP variant of M2-BERT is supported (use_glu_mlp=false)")
    fields = {ours: values[theirs] for theirs, ours in CONFIG_KEYS.items() if values.get(theirs) is not None}
    positions = values.get("max_position_embeddings")
    l_max = fields.get("max_length", M2Config.max_length)
    if values.get("use_positional_encodings") and positions is not None and positions != l_max:
        raise ValueError("max_position_embeddings differs from long_conv_l_max; not supported")
    fields["pooler"] = "mean" if values.get("pool_all") else "cls"
    fields["dropout"] = 0.0
    fields.update(overrides)
    return M2Config(**fields)


def to_published_state_dict(model: Any) -> dict[str, torch.Tensor]:
    """Our weights under the published names (tensors cloned, so shared ones are saved apart)."""
    m2 = as_m2_model(model)
    out: dict[str, torch.Tensor] = {}
    for name, tensor in m2.state_dict().items():
        out[_rename(name, _TO_PUBLISHED)] = tensor.detach().clone().contiguous()
    if m2.config.use_position_embeddings:
        out["bert.embeddings.position_ids"] = torch.arange(m2.config.max_length)[None]
    return out


def load_published_state_dict(state_dict: dict[str, torch.Tensor], config: M2Config) -> M2Model:
    """An M2Model holding published-layout weights; every parameter must be present."""
    model = M2Model(config)
    renamed: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    for name, tensor in state_dict.items():
        if IGNORED.match(name):
            continue
        try:
            ours = _rename(name, _FROM_PUBLISHED)
        except KeyError:
            unexpected.append(name)
            continue
        renamed[ours] = tensor
    if config.pooler == "none":
        renamed = {k: v for k, v in renamed.items() if not k.startswith("pooler.")}
    missing, extra = model.load_state_dict(renamed, strict=False)
    unexpected += [name for name in extra]
    if missing or unexpected:
        raise ValueError(
            "published M2 state dict does not match the config: "
            f"missing {sorted(missing)[:8]}{'...' if len(missing) > 8 else ''}, "
            f"unexpected {sorted(unexpected)[:8]}{'...' if len(unexpected) > 8 else ''}"
        )
    return model.eval()


def load_published_folder(folder: str | Path, **overrides: Any) -> M2Model:
    """A published checkpoint folder: `config.json` plus `model.safetensors` (see module doc)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    weights = folder / "model.safetensors"
    if not weights.exists():
        raise FileNotFoundError(
            f"{weights} not found: convert pytorch_model.bin once with torch.load(weights_only=True) "
            "and safetensors.torch.save_file (no pickles are read here)"
        )
    config = config_from_published(json.loads((folder / "config.json").read_text()), **overrides)
    return load_published_state_dict(load_file(str(weights)), config)


def convert_published(folder: str | Path, output: str | Path) -> Path:
    """A published checkpoint folder as a Tessera M2 folder (`--encoder m2:OUTPUT`).

    The tokenizer is the folder's own when it has one, else the bundled MiniLM's (BERT's
    uncased 30,522-wordpiece vocabulary, the one the published models use). Documents are
    then read whole, up to the checkpoint's `long_conv_l_max`."""
    from tessera.models.m2.model import build_sentence_transformer

    folder = Path(folder)
    published = load_published_folder(folder)
    own_tokenizer = any((folder / name).exists() for name in ("tokenizer.json", "vocab.txt"))
    model = build_sentence_transformer(
        published.config,
        max_seq_length=published.config.max_length,
        tokenizer_path=folder if own_tokenizer else None,
    )
    as_m2_model(model).load_state_dict(published.state_dict())
    output = Path(output)
    model.save(str(output))
    return output
