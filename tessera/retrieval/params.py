"""Search parameters: parsed from `NAME=VALUE` text, and routed to the indexes that take them.

Every surface (`--param` of the CLI, `params` of the service, `?NAME=VALUE` of an evaluation
suite's system) reads them the same way, and indexes searched together (fused, or compared by
`eval`) each get those of their kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from tessera.errors import TesseraError
from tessera.indexing.search_params import check_params
from tessera.models.bm25 import NAMES as BM25_PARAMS

if TYPE_CHECKING:  # the alias lives with the backends; importing them would import faiss
    from tessera.indexing.backends import Params


def parse_params(items: Iterable[str], field: str = "param") -> Params:
    """`nprobe=16` -> {"nprobe": 16.0}; non-numbers stay strings (`mode=sdc`)."""
    params: dict[str, float | str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not (sep and name and value):
            raise TesseraError(f"expected NAME=VALUE, got '{item}'", field=field)
        if name in params:  # the last one won, silently
            raise TesseraError(f"'{name}' is given twice", field=field)
        try:
            params[name] = float(value)
        except ValueError:
            params[name] = value
    check_params(params)
    return params


def route_params(backends: Sequence[str], params: Params) -> list[Params]:
    """Search parameters per index, one manifest `backend` each: BM25's settings (k1, prf, ...) go
    to the BM25 indexes, every other parameter (nprobe, mode, prf_depth, ...) to the others. One
    that no index takes is refused."""
    lexical = {name: value for name, value in params.items() if name in BM25_PARAMS}
    other = {name: value for name, value in params.items() if name not in BM25_PARAMS}
    if lexical and "lucene" not in backends:
        raise TesseraError(
            f"search parameter {', '.join(lexical)} applies to BM25 indexes only", field="search_params"
        )
    if other and all(backend == "lucene" for backend in backends):
        raise TesseraError(
            f"search parameter {', '.join(other)} does not apply to a BM25 index "
            f"(BM25 takes {', '.join(BM25_PARAMS)})",
            field="search_params",
        )
    return [lexical if backend == "lucene" else other for backend in backends]
