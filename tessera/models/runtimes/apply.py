"""Put a loaded sentence-transformers model on a runtime; return the context its encode runs in."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from tessera.errors import EncoderError
from tessera.models.runtimes import DEFAULT_RUNTIME, RUNTIMES

Context = Callable[[], AbstractContextManager[Any]]


def bf16_weights(model: Any) -> Context:
    """Linear weights stored in bf16, encode under bf16 autocast. Stored, so autocast does not
    re-cast every weight on every forward pass (4-6% of MiniLM's bf16 time on LISA);
    autocast keeps LayerNorm, softmax and the residual stream in fp32. The whole model in bf16
    ran faster still but lost nDCG@10 (LISA 0.987x fp32; docs/results.md section 11)."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.to(torch.bfloat16)
    kind = "cuda" if str(model.device).startswith("cuda") else "cpu"
    return lambda: torch.autocast(kind, dtype=torch.bfloat16)


def apply_runtime(model: Any, runtime: str, exported: bool = True, folder: Path | None = None) -> Context:
    """Switch `model` (already loaded, fp32) to `runtime`. `exported=False` (multi-vector
    models, whose token outputs the exports do not carry) allows fp32 and bf16 only. `folder`,
    the model's local folder, keys the export cache by its weight files."""
    if runtime not in RUNTIMES:
        expected = ", ".join(RUNTIMES)
        raise EncoderError(f"unknown runtime '{runtime}' (expected one of {expected})", field="encoder")
    if runtime == DEFAULT_RUNTIME:
        return contextlib.nullcontext
    if runtime == "bf16":
        return bf16_weights(model)
    if not exported:
        raise EncoderError(f"runtime '{runtime}' is for single-vector encoders; use @bf16", field="encoder")
    from tessera.models.runtimes.engines import engine
    from tessera.models.runtimes.export import (
        export_onnx,
        export_onnx_int8,
        input_names,
        load_cached,
        transformer_module,
    )

    load = engine(runtime)
    transformer = transformer_module(model)
    names = input_names(transformer)
    export = export_onnx_int8 if runtime == "onnx-int8" else export_onnx
    run = load_cached(export(transformer, folder), load)
    if run is None:  # a damaged cached export, removed: made again
        run = load(export(transformer, folder))
    transformer.model = _exported_transformer(run, names, transformer.model.config)
    return contextlib.nullcontext


def _exported_transformer(run: Any, names: list[str], hf_config: Any) -> Any:
    """A torch module standing in for the Hugging Face model inside a sentence-transformers
    `Transformer`: that module calls `model(**features)` and reads `last_hidden_state`, which
    this answers from the exported graph, so tokenizer, batching and pooling stay the library's."""
    import numpy as np
    import torch

    from tessera.models.runtimes.export import OUTPUT

    class ExportedTransformer(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = hf_config

        def forward(self, input_ids: torch.Tensor, **features: Any) -> dict[str, torch.Tensor]:
            features["input_ids"] = input_ids
            feeds = {}
            for name in names:
                value = features.get(name)
                value = torch.zeros_like(input_ids) if value is None else value
                feeds[name] = value.cpu().numpy().astype(np.int64)
            return {OUTPUT: torch.from_numpy(np.asarray(run(feeds), dtype=np.float32))}

    return ExportedTransformer()
