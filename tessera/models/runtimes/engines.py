"""Exported graphs run by ONNX Runtime or OpenVINO: `Run` maps named int64 inputs to the last
hidden states. No PyTorch here, so the torch-free encoder (`light.py`) can use it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tessera import config
from tessera.errors import EncoderError
from tessera.models.runtimes.export import OUTPUT

Run = Callable[[dict[str, np.ndarray]], np.ndarray]


def threads() -> int:
    """OMP_NUM_THREADS when set (as PyTorch reads it), else the cores this process may use."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else len(os.sched_getaffinity(0))


def _missing(runtime: str, package: str) -> EncoderError:
    return EncoderError(
        f"runtime '{runtime}' needs the package {package}, which is not installed "
        f"(pip install {package}, or drop '@{runtime}' from the spec)",
        field="encoder",
    )


def engine(runtime: str) -> Callable[[Path], Run]:
    """The loader of an exported graph for `runtime`, checked before anything is exported."""
    try:
        if runtime == "openvino":
            import openvino  # noqa: F401

            return openvino_run
        import onnxruntime  # noqa: F401
    except ImportError:
        raise _missing(runtime, "openvino" if runtime == "openvino" else "onnxruntime") from None
    return onnxruntime_run


def onnxruntime_run(path: Path) -> Run:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads()
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda feeds: session.run([OUTPUT], feeds)[0]


def openvino_run(path: Path) -> Run:
    """OpenVINO at its default CPU precision (bf16 on AMX/AVX512-BF16 CPUs); compiled blobs are
    cached beside the export so a later process skips compilation."""
    import openvino as ov

    core = ov.Core()
    settings = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads()}
    blobs = config.cache_dir() / "runtimes" / "openvino-blobs"
    try:  # the blob cache only saves compiling again: a read-only cache runs without it
        blobs.mkdir(parents=True, exist_ok=True)
        if os.access(blobs, os.W_OK):
            settings["CACHE_DIR"] = str(blobs)
    except OSError:
        pass
    compiled = core.compile_model(core.read_model(str(path)), "CPU", settings)
    request = compiled.create_infer_request()
    output = compiled.output(0)

    def run(feeds: dict[str, np.ndarray]) -> np.ndarray:
        length = next(iter(feeds.values())).shape[1]
        padded = {name: _pad_length(value, SHAPE_STEP) for name, value in feeds.items()}
        return request.infer(padded)[output][:, :length]

    return run


SHAPE_STEP = 8
"""OpenVINO's CPU plugin prepares kernels per input shape; padding the sequence length up to a
multiple of 8 (masked, so the vectors do not change) lets batches share shapes: at batch 32,
the encoders' default, 4% more docs/s on Cranfield and 8% on LISA; no gain at 64-128
(benchmarks/openvino_shapes.py; docs/results.md section 11)."""


def _pad_length(value: np.ndarray, step: int) -> np.ndarray:
    """`value` [batch, length] zero-padded on the right to a multiple of `step` (pad id, mask 0)."""
    extra = -value.shape[1] % step
    return np.pad(value, ((0, 0), (0, extra))) if extra else value
