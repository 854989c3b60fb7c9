"""The default runtime's (fp32 PyTorch) query encoder, without transformers or sentence-transformers.

A one-shot `tessera search` on a default `minilm` index spent most of its time importing
sentence-transformers (which pulls transformers, scikit-learn and more: ~5 s of ~6 s here) for
one forward pass. Once the full encoder has been loaded, `export_traced` traces its transformer
with TorchScript and caches the trace beside the ONNX exports; a later process loads it with
torch alone (~0.1 s), tokenizes with `tokenizers` and batches and pools exactly as
sentence-transformers does, in the same float32 operations, so the vectors are bitwise those of
`DenseEncoder` (tests/models/test_runtimes.py holds it). A trace is kept only when it
reproduces the eager model exactly on a second batch of another shape, with padding; otherwise
(or under a torch without TorchScript) the full encoder keeps serving.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tessera.errors import EncoderError
from tessera.models.runtimes.export import (
    INPUTS_FILE,
    TRACED_FILE,
    cached,
    cached_export,
    folder_key,
    input_names,
    load_cached,
    positional_forward,
    transformer_module,
)
from tessera.models.runtimes.light import LightEncoder, plain_layout, texts_tokenizer

log = logging.getLogger(__name__)
RUNTIME = "fp32"


class TracedEncoder(LightEncoder):
    """LightEncoder's batching over the traced transformer, pooled and normalised in torch as
    sentence-transformers' Pooling, Normalize and `normalize_embeddings=True` do."""

    def __init__(self, *args: Any, normalize_module: bool, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.normalize_module = normalize_module

    def _batch(self, texts: list[str]) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        encodings = self.texts_tokenizer.encode_batch(texts)
        columns = {
            "input_ids": [e.ids for e in encodings],
            "attention_mask": [e.attention_mask for e in encodings],
            "token_type_ids": [e.type_ids for e in encodings],
        }
        tensors = [torch.tensor(columns[name], dtype=torch.int64) for name in self.names]
        mask = torch.tensor(columns["attention_mask"], dtype=torch.int64)
        with torch.inference_mode():
            states = self.run(*tensors)
            if self.pooling == "cls":
                pooled = states[:, 0]
            else:
                weights = mask.unsqueeze(-1).to(states.dtype)
                total = (states * weights).sum(dim=1, dtype=torch.float32)
                pooled = total / torch.clamp(weights.sum(dim=1, dtype=torch.float32), min=1e-9)
            if self.normalize_module:
                pooled = F.normalize(pooled, p=2, dim=-1)
            pooled = F.normalize(pooled, p=2, dim=1)
        return pooled.numpy()


def _trace(forward: Any, sample: tuple) -> Any:
    import torch

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings and torch.jit's deprecation notice
        return torch.jit.trace(forward, sample, check_trace=False)


def _quiet(call: Any, *args: Any, **kwargs: Any) -> Any:
    """torch.jit's save and load, without their deprecation notice (TorchScript still serves
    the one thing needed here: a module loaded by torch alone in a tenth of a second)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return call(*args, **kwargs)


def export_traced(model: Any, folder: Path) -> Path | None:
    """Trace the loaded sentence-transformers `model` (from `folder`) once and cache it; None
    when its layout is not one TracedEncoder serves or the trace is not exact."""
    import torch

    if plain_layout(folder) is None or str(model.device) != "cpu":
        return None
    key = folder_key(folder, RUNTIME)
    if key is None:
        return None
    if (path := cached_export(key, TRACED_FILE)) is not None:
        return path
    try:
        transformer = transformer_module(model)
        names = input_names(transformer)
    except EncoderError:  # not a Hugging Face text transformer first: the full encoder serves
        return None
    forward = positional_forward(transformer, names)

    def sample(texts: list[str]) -> tuple:
        features = transformer.tokenizer(texts, padding=True, return_tensors="pt")
        return tuple(features[name].to("cpu") for name in names)

    check = sample(["a longer second sample, to check the trace", "short", "of three texts"])

    def make(stage: Path) -> None:
        with torch.inference_mode(False):
            traced = _trace(forward, sample(["an example", "a longer example text"]))
        with torch.inference_mode():
            exact = torch.equal(traced(*check), forward(*check))
        if not exact:
            raise _Inexact()
        _quiet(torch.jit.save, traced, str(stage / TRACED_FILE))

    try:
        return cached(key, names, make, name=TRACED_FILE)
    except _Inexact:
        log.info("the traced transformer of %s differs from the eager one: not cached", folder)
    except (RuntimeError, OSError, AttributeError) as error:  # no TorchScript, a full disk, ...
        log.info("no traced query encoder for %s: %s", folder, error)
    return None


class _Inexact(Exception):
    pass


def traced_encoder(spec: str, folder: Path) -> TracedEncoder | None:
    """The traced fp32 encoder of `spec` when its trace is cached (see the module doc)."""
    layout = plain_layout(folder)
    if layout is None:
        return None
    path = cached_export(folder_key(folder, RUNTIME), TRACED_FILE)
    tokenizer = texts_tokenizer(folder, layout.max_length)
    if path is None or tokenizer is None:
        return None
    import torch

    names = json.loads(path.with_name(INPUTS_FILE).read_text())
    config = json.loads((folder / "config.json").read_text())
    module = load_cached(path, lambda found: _quiet(torch.jit.load, str(found), map_location="cpu"))
    if module is None:  # a damaged trace, removed: the full encoder serves and traces again
        return None
    return TracedEncoder(
        spec,
        module.eval(),
        tokenizer,
        names,
        layout.pooling,
        int(config["hidden_size"]),
        normalize_module=layout.normalize,
    )
