"""Tessera: from raw text to ranked answers.

from tessera import build_index, Index, evaluate
build_index("cranfield", "indexes/cran-minilm", encoder="minilm")
Index.load("indexes/cran-minilm").search("boundary layer transition", k=5)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_API = {
    "Index": "tessera.retrieval.index",
    "Hit": "tessera.retrieval.hits",
    "build_index": "tessera.indexing.builder",
    "evaluate": "tessera.eval.evaluate",
    "open_corpus": "tessera.data.corpus",
    "load_eval_dataset": "tessera.data.datasets",
    "load_encoder": "tessera.models.registry",
    "reciprocal_rank_fusion": "tessera.retrieval.fusion",
    "hybrid_search": "tessera.retrieval.fusion",
    "quickstart": "tessera.quickstart",
    "TesseraError": "tessera.errors",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    """Import the API lazily: `import tessera` stays fast; torch loads only when encoding."""
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'tessera' has no attribute {name!r}")
