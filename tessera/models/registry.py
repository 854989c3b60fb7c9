"""Spec strings -> encoders. The spec is what the manifest stores, so it must round-trip.

| spec | meaning |
|---|---|
| `bm25` or `bm25:k1=0.9,b=0.4` | Lucene BM25 through pyserini |
| `minilm` | the bundled all-MiniLM-L6-v2 (no network needed) |
| `PATH` | a sentence-transformers folder |
| `ORG/NAME` | a hub model (needs network and `HF_HUB_OFFLINE=0`) |
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from tessera import config
from tessera.errors import EncoderError
from tessera.models.bundled import BUNDLED, bundled_path
from tessera.models.encoder import BM25, Encoder


def parse_bm25(spec: str) -> BM25:
    _, _, params = spec.partition(":")
    values: dict[str, float] = {}
    for item in filter(None, params.split(",")):
        key, sep, value = item.partition("=")
        if not sep or key.strip() not in ("k1", "b"):
            raise EncoderError(f"bad BM25 parameter '{item}' (expected k1=..., b=...)", field="encoder")
        try:
            values[key.strip()] = float(value)
        except ValueError:
            raise EncoderError(
                f"BM25 parameter '{key}' is not a number: '{value}'", field="encoder"
            ) from None
    return BM25(**values)


def is_lexical(spec: str) -> bool:
    return spec == "bm25" or spec.startswith("bm25:")


def canonical_spec(spec: str) -> str:
    """The spec as the manifest stores it: BM25 with explicit parameters, paths absolute."""
    if is_lexical(spec):
        return parse_bm25(spec).spec
    if spec in BUNDLED:
        return spec
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.exists() else spec


@cache
def load_encoder(spec: str) -> Encoder:
    """Load (once per process) the dense encoder a spec names."""
    from tessera.models.dense import DenseEncoder

    config.apply_offline_defaults()
    if is_lexical(spec):
        raise EncoderError("bm25 is a lexical model, not a vector encoder", field="encoder")
    if spec in BUNDLED:
        return DenseEncoder(spec, bundled_path(spec))
    path = Path(spec).expanduser()
    if path.exists():
        return DenseEncoder(canonical_spec(spec), path)
    if "/" not in spec:
        known = ", ".join(["bm25", *BUNDLED])
        raise EncoderError(
            f"unknown encoder '{spec}': not a folder, a hub name, or one of {known}", field="encoder"
        )
    return DenseEncoder(spec, spec)
