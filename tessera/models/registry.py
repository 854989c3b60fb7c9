"""Spec strings -> encoders. The spec is what the manifest stores, so it must round-trip.

| spec | meaning |
|---|---|
| `bm25`, `bm25:k1=0.9,b=0.4`, `bm25:prf=rm3` | Lucene BM25 through pyserini; query expansion (`bm25.py`) |
| `minilm` | the bundled all-MiniLM-L6-v2 (no network needed) |
| `PATH` | a sentence-transformers folder |
| `ORG/NAME` | a hub model (needs network and `HF_HUB_OFFLINE=0`) |
| `colbert:PATH` | a multi-vector model folder; the index scores with ColBERT MaxSim |
| `xtr:PATH` | the same kind of folder; the index scores with XTR (retrieved tokens only) |
| `llm:MODEL[+tp][,OPTION=..]` | a decoder-only LLM: PromptEOL, Token Prepending, mean pooling (`llm.py`) |
| `m2:PATH` | a saved M2-BERT (Monarch Mixer) folder; documents read up to 32k tokens (`m2/`) |
| `SPEC@RUNTIME` | a dense or multi-vector spec on another engine: `@bf16`, `@onnx`, ... (`runtimes/`) |
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from tessera import config
from tessera.errors import EncoderError
from tessera.models.bm25 import new_index_settings
from tessera.models.bundled import BUNDLED, bundled_path
from tessera.models.encoder import Encoder
from tessera.models.llm import is_llm_spec, parse_llm_spec
from tessera.models.multivector import parse_multivector_spec
from tessera.models.remote import canonical_remote_spec, is_remote_spec
from tessera.models.runtimes import AUTO, DEFAULT_RUNTIME, EXPORTED, split_runtime, with_runtime


def is_lexical(spec: str) -> bool:
    return spec == "bm25" or spec.startswith("bm25:")


def is_single_vector(spec: str) -> bool:
    """Whether a spec names an encoder of one vector a text (not BM25, not ColBERT or XTR)."""
    return encoder_kind(spec) not in ("lexical", "multivector")


M2_PREFIX = "m2:"


def _m2_folder(spec: str) -> str:
    folder = spec[len(M2_PREFIX) :]
    if not folder:
        raise EncoderError(f"'{spec}' names no model folder (expected m2:PATH)", field="encoder")
    return folder


def _runtime_of(spec: str) -> tuple[str, str]:
    """(base, runtime), refusing a runtime on encoders that do not run on sentence-transformers."""
    base, runtime = split_runtime(spec)
    fixed = is_lexical(base) or is_llm_spec(base) or base.startswith(M2_PREFIX)
    if fixed and spec.endswith(f"@{AUTO}"):  # auto: the fastest runtime available, here the only one
        return base, DEFAULT_RUNTIME
    if runtime != DEFAULT_RUNTIME and fixed:
        raise EncoderError(
            f"'{spec}': runtimes (@{runtime}) apply to sentence-transformers and multi-vector encoders only",
            field="encoder",
        )
    return base, runtime


def canonical_spec(spec: str) -> str:
    """The spec as the manifest stores it: BM25 with explicit parameters, paths absolute, the
    runtime suffix kept (fp32, the default, never written); an endpoint's URL with `/v1` and
    its model."""
    if is_remote_spec(spec):
        return canonical_remote_spec(spec)
    base, runtime = _runtime_of(spec)
    return with_runtime(_canonical_base(base), runtime)


def _canonical_base(spec: str) -> str:
    if is_lexical(spec):
        return new_index_settings(spec).spec
    if spec in BUNDLED:
        return spec
    if is_llm_spec(spec):
        return parse_llm_spec(spec).spec
    if spec.startswith(M2_PREFIX):
        return M2_PREFIX + str(Path(_m2_folder(spec)).expanduser().resolve())
    multi = parse_multivector_spec(spec)
    if multi is not None:
        scoring, folder = multi
        return f"{scoring}:{Path(folder).expanduser().resolve()}"
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.exists() else spec


def _multivector_folder(spec: str, folder: str) -> Path:
    """The model folder of a `colbert:`/`xtr:` spec, refused early when it cannot be one."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise EncoderError(f"'{spec}': no such model folder '{path}'", file=path, field="encoder")
    config_file = path / "config_sentence_transformers.json"
    try:
        kind = json.loads(config_file.read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        kind = None
    if kind != "MultiVectorEncoder":
        raise EncoderError(
            f"'{spec}': {path} is not a saved multi-vector model "
            f"(config_sentence_transformers.json says model_type {kind!r}, expected 'MultiVectorEncoder')",
            file=config_file,
            field="encoder",
        )
    return path


@cache
def load_query_encoder(spec: str) -> Encoder:
    """The encoder a search needs, with the fewest imports that give the same vectors: for
    exported runtimes (`@onnx`, ...) the torch-free one of `runtimes/light.py`, for the default
    fp32 runtime the cached TorchScript trace of `runtimes/traced.py` (a one-shot `tessera
    search` then skips sentence-transformers' imports), else `load_encoder(spec)`. Loading the
    full fp32 encoder here makes the trace, so the next process finds it."""
    kind = encoder_kind(spec)
    if kind not in ("bundled", "folder"):
        return load_encoder(spec)
    base, runtime = _runtime_of(spec)
    folder = bundled_path(base) if kind == "bundled" else Path(base).expanduser()
    if runtime not in (*EXPORTED, DEFAULT_RUNTIME) or not folder.is_dir():
        return load_encoder(spec)
    if runtime == DEFAULT_RUNTIME:
        from tessera.models.runtimes.traced import export_traced, traced_encoder

        traced = traced_encoder(canonical_spec(spec), folder)
        if traced is not None:
            return traced
        encoder = load_encoder(spec)
        export_traced(encoder.model, folder)
        return encoder
    from tessera.models.runtimes.light import light_encoder

    light = light_encoder(canonical_spec(spec), folder, runtime)
    return light if light is not None else load_encoder(spec)


def encoder_kind(spec: str) -> str:
    """Which loader a spec goes to, without loading anything: remote, lexical, llm, m2,
    multivector, bundled, folder, hub (`org/name`), or unknown. The one dispatch table
    `load_encoder` and `check_known` share."""
    if is_remote_spec(spec):
        return "remote"
    name = _runtime_of(spec)[0]
    if is_lexical(name):
        return "lexical"
    if is_llm_spec(name):
        return "llm"
    if name.startswith(M2_PREFIX):
        return "m2"
    if parse_multivector_spec(name) is not None:
        return "multivector"
    if name in BUNDLED:
        return "bundled"
    if Path(name).expanduser().exists():
        return "folder"
    return "hub" if "/" in name else "unknown"


@cache
def load_encoder(spec: str) -> Encoder:
    """Load (once per process) the dense or multi-vector encoder a spec names."""
    from tessera.models.dense import DenseEncoder

    config.apply_offline_defaults()
    kind = encoder_kind(spec)
    if kind == "unknown":
        check_known(spec)  # raises, saying what is known
    if kind == "remote":
        from tessera.models.remote import RemoteEncoder

        return RemoteEncoder(spec)
    full = spec
    spec, runtime = _runtime_of(full)
    if kind == "lexical":
        raise EncoderError("bm25 is a lexical model, not a vector encoder", field="encoder")
    if kind == "llm":
        from tessera.models.llm import LLMEncoder

        return LLMEncoder(parse_llm_spec(spec))
    if kind == "m2":
        from tessera.models.m2.encoder import M2Encoder

        return M2Encoder(canonical_spec(spec), _m2_folder(spec))
    if kind == "multivector":
        from tessera.models.multivector import MultiVectorTextEncoder

        scoring, folder = parse_multivector_spec(spec)  # type: ignore[misc]
        return MultiVectorTextEncoder(
            canonical_spec(full), _multivector_folder(spec, folder), scoring, runtime=runtime
        )
    source = (
        bundled_path(spec) if kind == "bundled" else Path(spec).expanduser() if kind == "folder" else spec
    )
    return DenseEncoder(canonical_spec(full), source, runtime=runtime)


def check_known(spec: str, field: str = "encoder") -> None:
    """Refuse a plain spec that is no folder, no hub name (`org/name`) and no bundled model,
    without loading anything; other kinds (llm:, m2:, colbert:, URLs) pass to their loaders."""
    if encoder_kind(spec) == "unknown":
        known = ", ".join(["bm25", *BUNDLED])
        raise EncoderError(
            f"unknown encoder '{spec}': not a folder, a hub name, or one of {known}", field=field
        )
