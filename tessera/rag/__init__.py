"""Retrieval-augmented generation: retrieve -> compress (CRAG, TCRA) -> generate.

from tessera.rag import answer
answer("indexes/cran-minilm", "what is a boundary layer?", compress="crag").answer
"""

from __future__ import annotations

from tessera.lazy import lazy_exports

_API = {
    "answer": "tessera.rag.pipeline",
    "chat": "tessera.rag.pipeline",
    "search_query": "tessera.rag.conversation",
    "prepare": "tessera.rag.pipeline",
    "evaluate_rag": "tessera.rag.evaluate",
    "open_generator": "tessera.rag.generators",
}
__all__ = sorted(_API)

__getattr__ = lazy_exports("tessera.rag", _API)
