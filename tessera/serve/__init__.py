"""`tessera serve`: a long-running search and RAG service over loaded indexes.

from tessera.serve import ServeSettings, create_app
app = create_app(ServeSettings.from_specs(["indexes/cran-minilm"]))   # any ASGI server

Indexes load once, in the app's lifespan; concurrent queries to one index are micro-batched into
one `Index.batch_search` call (batching.py); `GET /` is an offline search page (static/).
"""

from __future__ import annotations

from tessera.lazy import lazy_exports

_API = {
    "ServeSettings": "tessera.serve.settings",
    "create_app": "tessera.serve.app",
    "run": "tessera.serve.server",
}
__all__ = sorted(_API)

__getattr__ = lazy_exports("tessera.serve", _API)
