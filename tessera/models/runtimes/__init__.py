"""Encoder runtimes: the same weights run by another engine, named by a spec suffix.

| suffix | engine |
|---|---|
| (none) or `@fp32` | PyTorch float32, the reference every other runtime is measured against |
| `@bf16` | PyTorch, Linear weights in bf16, under autocast (AVX512-BF16/AMX, CUDA); multi-vector too |
| `@onnx` | ONNX Runtime on an ONNX export of the transformer (float32) |
| `@onnx-int8` | the same export, weights quantized to int8 per channel, activations at run time (VNNI) |
| `@openvino` | OpenVINO on the same export, at its default CPU precision (bf16 where the CPU has it) |
| `@auto` | resolved when read: `bf16` on a CUDA machine or an AVX512-BF16/AMX CPU, else fp32 |

Only the transformer's forward changes engine; sentence-transformers keeps tokenization,
length-sorted batching, prompts, pooling and normalisation, so every runtime sees the same
inputs. Exports are made offline from the loaded weights and cached (`runtimes/` under
`TESSERA_CACHE_DIR`), keyed by a hash of the weights, never downloaded.
"""

from __future__ import annotations

from pathlib import Path

from tessera.errors import EncoderError

DEFAULT_RUNTIME = "fp32"
RUNTIMES = ("fp32", "bf16", "onnx", "onnx-int8", "openvino")
EXPORTED = ("onnx", "onnx-int8", "openvino")
AUTO = "auto"
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


CPUINFO = Path("/proc/cpuinfo")  # the Linux kernel's interface, not a path of one machine


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The CPU's feature flags (first `flags` line of cpuinfo); empty where it cannot be read."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return frozenset()
    return frozenset(next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), []))


def auto_runtime(cpuinfo: Path = CPUINFO, gpus: Path = Path("/proc/driver/nvidia/gpus")) -> str:
    """The runtime `@auto` stands for on this machine. bf16 was the fastest runtime on average
    over Cranfield and LISA (first run 2.14x / 1.68x bare fp32, nDCG@10 0.999x / 0.993x;
    OpenVINO 1.63x / 2.01x; later runs in docs/results.md section 11) and it also serves
    multi-vector encoders, so it is the choice wherever the hardware multiplies bf16 natively;
    elsewhere fp32. The resolved runtime is what the manifest stores, so an index stays exactly
    reproducible on any machine."""
    if gpus.is_dir() and any(gpus.iterdir()):
        return "bf16"
    return "bf16" if BF16_CPU_FLAGS & cpu_flags(cpuinfo) else DEFAULT_RUNTIME


def split_runtime(spec: str) -> tuple[str, str]:
    """(base spec, runtime) of `BASE@RUNTIME` (`@auto` resolved); a spec without a known
    suffix runs fp32."""
    base, at, suffix = spec.rpartition("@")
    if at and suffix == AUTO:
        suffix = auto_runtime()
    if at and suffix in RUNTIMES:
        if not base:
            raise EncoderError(f"'{spec}' names a runtime but no encoder", field="encoder")
        return base, suffix
    return spec, DEFAULT_RUNTIME


def with_runtime(base: str, runtime: str) -> str:
    """The canonical spec: fp32 is the default and is never written, so old specs stay equal."""
    return base if runtime == DEFAULT_RUNTIME else f"{base}@{runtime}"
