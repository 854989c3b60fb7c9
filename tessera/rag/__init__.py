"""Retrieval-augmented generation: retrieve -> compress (CRAG, TCRA) -> generate.

from tessera.rag import answer
answer("indexes/cran-minilm", "what is a boundary layer?", compress="crag").answer
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_API = {
    "answer": "tessera.rag.pipeline",
    "prepare": "tessera.rag.pipeline",
    "evaluate_rag": "tessera.rag.evaluate",
    "open_generator": "tessera.rag.generators",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    """Import lazily: `import tessera.rag` must not load torch."""
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'tessera.rag' has no attribute {name!r}")
