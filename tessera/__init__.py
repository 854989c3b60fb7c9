"""Tessera: from raw text to ranked answers.

from tessera import build_index, Index, evaluate
build_index("cranfield", "indexes/cran-minilm", encoder="minilm")
Index.load("indexes/cran-minilm").search("boundary layer transition", k=5)
"""

from __future__ import annotations

from tessera.lazy import lazy_exports

__version__ = "0.1.0"

_API = {
    "Index": "tessera.retrieval.index",
    "Hit": "tessera.retrieval.hits",
    "build_index": "tessera.indexing.builder",
    "index_info": "tessera.indexing.info",
    "evaluate": "tessera.eval.evaluate",
    "search_run": "tessera.retrieval.query_set",
    "load_queries": "tessera.data.datasets",
    "open_corpus": "tessera.data.corpus",
    "load_eval_dataset": "tessera.data.datasets",
    "load_encoder": "tessera.models.registry",
    "reciprocal_rank_fusion": "tessera.retrieval.fusion",
    "hybrid_search": "tessera.retrieval.fusion",
    "load_reranker": "tessera.retrieval.rerank",
    "rerank": "tessera.retrieval.rerank",
    "search_one": "tessera.retrieval.query_set",
    "Mmr": "tessera.retrieval.diversify",
    "diversify": "tessera.retrieval.diversify",
    "quickstart": "tessera.quickstart",
    "parse_filter": "tessera.data.metadata",
    "TesseraError": "tessera.errors",
}
__all__ = sorted(_API)

__getattr__ = lazy_exports("tessera", _API)
