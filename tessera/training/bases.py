"""Where training starts: a bundled model, a folder, or a hub name, and what kind of model it is."""

from __future__ import annotations

import json
from pathlib import Path

from tessera.errors import EncoderError
from tessera.models.bundled import BUNDLED, bundled_path


def resolve_base(base: str | Path | None) -> str:
    """The starting model as something loadable: a bundled name's folder, a folder, a hub name."""
    name = str(base) if base else "minilm"
    if name in BUNDLED:
        return str(bundled_path(name))
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if name.count("/") == 1 and not name.startswith((".", "/", "~")):
        return name  # a hub name: loads only with network access and HF_HUB_OFFLINE=0
    raise EncoderError(
        f"base model '{name}' is not a folder, a hub name or one of {', '.join(BUNDLED)}", field="base"
    )


def _folder_json(base: str, name: str) -> object:
    """A JSON file of a sentence-transformers folder, or None (no folder, a hub name, bad JSON)."""
    try:
        return json.loads((Path(base) / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def model_type(base: str) -> str | None:
    """'SentenceTransformer', 'MultiVectorEncoder', ... as a sentence-transformers folder records it."""
    info = _folder_json(base, "config_sentence_transformers.json")
    return info.get("model_type") if isinstance(info, dict) else None


def routes_apart(base: str) -> bool:
    """Whether a sentence-transformers folder sends queries and documents through a `Router`
    (as `train dense --freeze-documents` writes), read from its modules.json."""
    modules = _folder_json(base, "modules.json")
    return isinstance(modules, list) and any(
        isinstance(m, dict) and str(m.get("type", "")).endswith(".Router") for m in modules
    )
