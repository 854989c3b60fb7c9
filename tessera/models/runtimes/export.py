"""Exports of a sentence-transformers model's transformer (ONNX, and the TorchScript trace the
default fp32 runtime's queries load), made once and cached.

sentence-transformers' own `backend="onnx"|"openvino"` goes through optimum-onnx and
optimum-intel, whose releases pin transformers below 4.58 and 5.6; Tessera runs transformers
5.x, so it exports with `torch.onnx` itself and quantizes with ONNX Runtime's own tools.
The cache key is a hash of the weight files (or, for a model without a local folder, of the
loaded tensors) and the export settings, so a retrained model in the same folder gets a new
export, and the same weights under another path reuse the old one. The key of a folder needs
no PyTorch, so `light.py` finds an export without importing it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import warnings
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypeVar

from tessera import config
from tessera.durable import publish_dir
from tessera.errors import EncoderError

T = TypeVar("T")
MODEL_FILE = "model.onnx"
TRACED_FILE = "model.pt"  # the fp32 TorchScript trace (`traced.py`)
INPUTS_FILE = "inputs.json"  # the graph's input names, in order
OPSET = 17
OUTPUT = "last_hidden_state"
WEIGHT_FILES = ("*.safetensors", "pytorch_model*.bin")
# What each runtime runs; a change here must change the string, so old caches are not reused.
SETTINGS = {
    "onnx": "onnx",
    "openvino": "onnx",
    "onnx-int8": "onnx-int8:matmul-const-b,per-channel,qint8,no-down",
    "fp32": "torchscript-trace",
}


def transformer_module(model: Any) -> Any:
    """The first module of a sentence-transformers model, when it is a Hugging Face transformer."""
    from sentence_transformers.base.modules import Transformer

    first = model[0] if len(model) else None
    if not isinstance(first, Transformer):
        raise EncoderError(
            f"exported runtimes need a model whose first module is a Transformer, not {type(first).__name__}",
            field="encoder",
        )
    return first


def input_names(transformer: Any) -> list[str]:
    """The tokenizer outputs the transformer's forward takes (BERT's token_type_ids, or not)."""
    import inspect

    accepted = set(inspect.signature(transformer.model.forward).parameters)
    names = [name for name in transformer.tokenizer.model_input_names if name in accepted]
    if "input_ids" not in names:
        raise EncoderError("exported runtimes need a text model that takes input_ids", field="encoder")
    return names


def _stamp(runtime: str) -> str:
    """The settings and the versions of what made the export: a new torch or transformers may
    trace a different graph, a new ONNX Runtime quantize differently."""
    if runtime == "fp32":
        return f"{SETTINGS[runtime]}|torch={version('torch')}|transformers={version('transformers')}"
    return f"{SETTINGS[runtime]}|torch={version('torch')}|onnxruntime={version('onnxruntime')}|opset={OPSET}"


def folder_key(folder: Path, runtime: str) -> str | None:
    """sha256 over a model folder's weight files and the runtime's export settings; None when
    the folder holds no weight file at its top (the model is then keyed by its tensors)."""
    files = sorted(path for pattern in WEIGHT_FILES for path in Path(folder).glob(pattern))
    if not files:
        return None
    digest = hashlib.sha256(_stamp(runtime).encode())
    for path in files:
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()[:20]


def tensors_key(transformer: Any, runtime: str) -> str:
    """sha256 over every loaded weight tensor (name, shape, bytes) and the export settings."""
    import torch

    digest = hashlib.sha256(_stamp(runtime).encode())
    for name, tensor in sorted(transformer.model.state_dict().items()):
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:20]


def cached_export(key: str | None, name: str = MODEL_FILE) -> Path | None:
    """The export `name` under `runtimes/KEY/`, if it was made."""
    if key is None:
        return None
    path = config.cache_dir() / "runtimes" / key / name
    return path if path.is_file() and path.with_name(INPUTS_FILE).is_file() else None


def cached(key: str, names: list[str], make, name: str = MODEL_FILE) -> Path:
    """`runtimes/KEY/NAME`, made by `make(folder)` in a staging folder of this process and
    published once, with the input names beside it (two processes making the same export both
    publish a complete folder; the last one stays)."""
    if (path := cached_export(key, name)) is not None:
        return path
    folder = config.cache_dir() / "runtimes" / key
    stage = folder.with_name(f"{key}.{os.getpid()}.tmp")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        make(stage)
        (stage / INPUTS_FILE).write_text(json.dumps(names))
        publish_dir(stage, folder, overwrite=True)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return folder / name


def load_cached(path: Path, load: Callable[[Path], T]) -> T | None:
    """`load(path)` of a cached export, or None after removing a damaged one (a truncated file,
    a hand edit) so that it is made again; a damaged export that cannot be removed (a read-only
    cache) is an error naming its folder, not the runtime's own traceback."""
    try:
        return load(path)
    except Exception as exc:  # noqa: BLE001 - onnxruntime, OpenVINO and TorchScript raise their own kinds
        cause = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        shutil.rmtree(path.parent, ignore_errors=True)
        if path.parent.exists():
            raise EncoderError(
                f"the cached export {path.parent} cannot be loaded ({cause}): delete that folder",
                field="encoder",
            ) from None
        logging.getLogger(__name__).warning("removed a damaged cached export %s (%s)", path.parent, cause)
        return None


def export_key(transformer: Any, folder: Path | None, runtime: str) -> str:
    """The cache key: by the folder's weight files when there is a folder, else by tensors."""
    key = folder_key(folder, runtime) if folder is not None else None
    return key or tensors_key(transformer, runtime)


def positional_forward(transformer: Any, names: list[str]) -> Any:
    """The Hugging Face model as a module of positional tensors (in `names` order) returning
    the last hidden states: the signature both exporters trace."""
    import torch

    hf_model = transformer.model

    class Forward(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = hf_model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, inputs, strict=True)), return_dict=True)[OUTPUT]

    return Forward().eval()


def export_onnx(transformer: Any, folder: Path | None = None) -> Path:
    """The float32 ONNX graph of the transformer: inputs by name, batch and length dynamic."""
    import torch

    names = input_names(transformer)

    def make(stage: Path) -> None:
        texts = ["an example", "a longer example text"]
        sample = transformer.tokenizer(texts, padding=True, return_tensors="pt")
        axes = {name: {0: "batch", 1: "tokens"} for name in [*names, OUTPUT]}
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                positional_forward(transformer, names),
                tuple(sample[name] for name in names),
                str(stage / MODEL_FILE),
                input_names=names,
                output_names=[OUTPUT],
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )

    return cached(export_key(transformer, folder, "onnx"), names, make)


def down_projections(path: Path) -> list[str]:
    """MatMul nodes whose weight maps a wider input to a narrower output: the feed-forward
    blocks' second layer, whose input is the GELU output with its outlier activations."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    shapes = {init.name: tuple(init.dims) for init in graph.initializer}
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul"
        and len(shape := shapes.get(node.input[1], ())) == 2
        and shape[0] > shape[1]
    ]


def export_onnx_int8(transformer: Any, folder: Path | None = None) -> Path:
    """The export with weight MatMuls in int8: weights per output channel, activations per tensor
    at run time (VNNI). Two choices keep every Cranfield abstract at cosine >= 0.99 to float32
    (per-tensor weights: 0.89; activation-by-activation attention products quantized too: 0.990):
    attention's own products stay float32 (`MatMulConstBOnly`), and so do the feed-forward down
    projections, whose input is the GELU output with its outliers (min cosine 0.990 -> 0.996)."""
    source = export_onnx(transformer, folder)

    def make(stage: Path) -> None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        own = stage / "float32.onnx"  # quantize_dynamic writes a `-inferred` file beside its input:
        shutil.copyfile(source, own)  # beside this process's copy, not the shared export

        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # its advice to pre-process the graph is for static quantization
        try:
            quantize_dynamic(
                str(own),
                str(stage / MODEL_FILE),
                op_types_to_quantize=["MatMul"],
                per_channel=True,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=down_projections(own),
                extra_options={"MatMulConstBOnly": True},
            )
        finally:
            root.setLevel(level)
            for leftover in stage.glob("float32*.onnx"):
                leftover.unlink()

    return cached(export_key(transformer, folder, "onnx-int8"), input_names(transformer), make)
