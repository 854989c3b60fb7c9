"""Encoder runtimes: the same weights run by another engine, named by a spec suffix.

| suffix | engine |
|---|---|
| (none) or `@fp32` | PyTorch float32, the reference every other runtime is measured against |
| `@bf16` | PyTorch under bf16 autocast (AMX/AVX512-BF16 CPUs, CUDA); multi-vector encoders too |
| `@onnx` | ONNX Runtime on an ONNX export of the transformer (float32) |
| `@onnx-int8` | the same export, weights quantized to int8 per channel, activations at run time (VNNI) |
| `@openvino` | OpenVINO on the same export, at its default CPU precision (bf16 where the CPU has it) |

Only the transformer's forward changes engine; sentence-transformers keeps tokenization,
length-sorted batching, prompts, pooling and normalisation, so every runtime sees the same
inputs. Exports are made offline from the loaded weights and cached (`runtimes/` under
`TESSERA_CACHE_DIR`), keyed by a hash of the weights, never downloaded.
"""

from __future__ import annotations

from tessera.errors import EncoderError

DEFAULT_RUNTIME = "fp32"
RUNTIMES = ("fp32", "bf16", "onnx", "onnx-int8", "openvino")
EXPORTED = ("onnx", "onnx-int8", "openvino")


def split_runtime(spec: str) -> tuple[str, str]:
    """(base spec, runtime) of `BASE@RUNTIME`; a spec without a known suffix runs fp32."""
    base, at, suffix = spec.rpartition("@")
    if at and suffix in RUNTIMES:
        if not base:
            raise EncoderError(f"'{spec}' names a runtime but no encoder", field="encoder")
        return base, suffix
    return spec, DEFAULT_RUNTIME


def with_runtime(base: str, runtime: str) -> str:
    """The canonical spec: fp32 is the default and is never written, so old specs stay equal."""
    return base if runtime == DEFAULT_RUNTIME else f"{base}@{runtime}"
