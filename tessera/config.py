"""Settings read from the environment, in one place.

| variable | default | meaning |
|---|---|---|
| `TESSERA_DATA_DIR` | `../shared/data` if it exists, else `~/.tessera/data` | collections, a folder each |
| `TESSERA_CACHE_DIR` | `~/.cache/tessera` | caches (ir_datasets home, scratch) |
| `TESSERA_JVM_HEAP` | `4g` | `-Xmx` for the Lucene JVM behind pyserini |
| `TESSERA_API_KEY` | unset | one more API key `tessera serve` accepts (serve/auth.py) |
| `HF_HUB_OFFLINE` | `1` unless set | never reach the Hugging Face hub unless the user asks for it |
"""

from __future__ import annotations

import os
from pathlib import Path

from tessera.errors import TesseraError


def data_dir() -> Path:
    """Folder with one sub-folder per local collection (cranfield/, cisi/, ...)."""
    env = os.environ.get("TESSERA_DATA_DIR")
    if env:
        return Path(env).expanduser()
    beside = Path.cwd().parent / "shared" / "data"
    if beside.is_dir():
        return beside
    return Path.home() / ".tessera" / "data"


def cache_dir() -> Path:
    env = os.environ.get("TESSERA_CACHE_DIR")
    path = Path(env).expanduser() if env else Path.home() / ".cache" / "tessera"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file of that name, a parent that is a file, no permission
        raise TesseraError(
            f"the cache folder {path} cannot be made ({exc.strerror}): point TESSERA_CACHE_DIR at a folder",
            field="TESSERA_CACHE_DIR",
        ) from None
    return path


def jvm_heap() -> str:
    return os.environ.get("TESSERA_JVM_HEAP", "4g")


def api_key() -> str | None:
    """A key for `tessera serve`, for those who would rather not write a key file."""
    return os.environ.get("TESSERA_API_KEY") or None


def apply_offline_defaults() -> None:
    """Default to offline hub access; a user with a network may set HF_HUB_OFFLINE=0."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
