"""Encoding for exported runtimes without importing PyTorch or transformers.

`tessera search` on an `@onnx` / `@onnx-int8` / `@openvino` index is a one-shot process whose
time goes to imports: sentence-transformers pulls torch, transformers and scikit-learn in (about
11 s on two cores) for a forward pass the exported graph can run alone. This encoder reads the
sentence-transformers folder's own files (modules.json, sentence_bert_config.json, the pooling
config, tokenizer.json), tokenizes with `tokenizers`, runs the cached export, and pools as
sentence-transformers does. It serves only the plain [Transformer, Pooling(mean|cls),
Normalize] layout without prompts; anything else (or an export not made yet) returns None and
the full encoder loads instead. Same graph, same tokens: vectors equal to `DenseEncoder`'s.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from tessera.models.dense import BATCH_SIZE
from tessera.models.runtimes import EXPORTED
from tessera.models.runtimes.export import INPUTS_FILE, cached_export, folder_key, load_cached


def _json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _pooling(folder: Path, modules: list) -> str | None:
    """'mean' or 'cls' from the Pooling module's config (old boolean keys or `pooling_mode`)."""
    config = _json(folder / modules[1].get("path", "") / "config.json")
    if not isinstance(config, dict):
        return None
    mode = config.get("pooling_mode")
    if mode is None:
        chosen = [key for key in ("mean_tokens", "cls_token") if config.get(f"pooling_mode_{key}")]
        others = [key for key, value in config.items() if key.startswith("pooling_mode_") and value]
        mode = {"mean_tokens": "mean", "cls_token": "cls"}.get(chosen[0]) if len(others) == 1 else None
    return mode if mode in ("mean", "cls") else None


class Layout(NamedTuple):
    pooling: str  # "mean" or "cls"
    max_length: int
    normalize: bool  # a Normalize module follows the pooling


def plain_layout(folder: Path) -> Layout | None:
    """The layout when the folder is [Transformer, Pooling, Normalize?] with no query prompt;
    None otherwise."""
    modules = _json(folder / "modules.json")
    if not isinstance(modules, list) or len(modules) not in (2, 3):
        return None
    kinds = [str(module.get("type", "")).rsplit(".", 1)[-1] for module in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or kinds[2:] not in ([], ["Normalize"]):
        return None
    if modules[0].get("path", "") != "":
        return None
    settings = _json(folder / "config_sentence_transformers.json") or {}
    if isinstance(settings, dict) and any((settings.get("prompts") or {}).values()):
        return None
    pooling = _pooling(folder, modules)
    config = _json(folder / "sentence_bert_config.json")
    if pooling is None or not isinstance(config, dict) or not config.get("max_seq_length"):
        return None
    return Layout(pooling, int(config["max_seq_length"]), len(modules) == 3)


class LightEncoder:
    """Texts through a cached export, queries and documents alike (the plain layout has no
    prompts). Indexing still loads the full encoder: it makes the export, and `--chunk` needs
    its Hugging Face tokenizer."""

    multi_vector = False
    batch_size = BATCH_SIZE  # DenseEncoder's: the same batches give the same padding, so the same vectors

    def __init__(self, spec: str, run, tokenizer, names: list[str], pooling: str, dim: int):
        self.spec, self.run, self.texts_tokenizer, self.names = spec, run, tokenizer, names
        self.pooling, self.dim = pooling, dim

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Longest first in batches, returned in input order: the same order and batches as
        sentence-transformers' encode (its argsort of negated character lengths, ties included)."""
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([-len(text) for text in texts])
        for start in range(0, len(order), self.batch_size):
            chosen = order[start : start + self.batch_size]
            vectors[chosen] = self._batch([texts[i] for i in chosen])
        return vectors

    encode_docs = encode_queries

    def _batch(self, texts: list[str]) -> np.ndarray:
        encodings = self.texts_tokenizer.encode_batch(texts)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        columns = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": mask,
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        states = np.asarray(self.run({name: columns[name] for name in self.names}), dtype=np.float32)
        if self.pooling == "cls":
            pooled = states[:, 0]
        else:
            weights = mask[:, :, None].astype(np.float32)
            pooled = (states * weights).sum(1) / np.clip(weights.sum(1), 1e-9, None)
        norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return pooled / norms


def texts_tokenizer(folder: Path, max_length: int):
    """The folder's `tokenizers` tokenizer, truncating and padding as sentence-transformers'
    call of the Hugging Face one does; None without tokenizer.json or a known pad token."""
    tokenizer_file = folder / "tokenizer.json"
    tokenizer_config = _json(folder / "tokenizer_config.json")
    if not tokenizer_file.is_file():
        return None
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    pad = tokenizer_config.get("pad_token") if isinstance(tokenizer_config, dict) else None
    pad = pad.get("content") if isinstance(pad, dict) else pad
    pad_id = tokenizer.token_to_id(pad) if isinstance(pad, str) else None
    if pad_id is None:
        return None
    tokenizer.enable_truncation(max_length)
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad)
    return tokenizer


def light_encoder(spec: str, folder: Path, runtime: str) -> LightEncoder | None:
    """The torch-free encoder of `spec`, or None where it cannot serve (see the module doc)."""
    if runtime not in EXPORTED:
        return None
    layout = plain_layout(folder)
    if layout is None:
        return None
    path = cached_export(folder_key(folder, runtime))
    pooling, max_length, _ = layout
    tokenizer = texts_tokenizer(folder, max_length)
    if path is None or tokenizer is None:
        return None
    from tessera.models.runtimes.engines import engine

    input_names = _json(path.with_name(INPUTS_FILE))
    config = _json(folder / "config.json")
    if not isinstance(input_names, list) or not isinstance(config, dict) or "hidden_size" not in config:
        return None
    run = load_cached(path, engine(runtime))
    if run is None:  # a damaged export, removed: the full encoder makes it again
        return None
    return LightEncoder(spec, run, tokenizer, input_names, pooling, int(config["hidden_size"]))
