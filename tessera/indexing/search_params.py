"""Search parameters' values checked once, for every surface that sets them (the CLI's `--param`,
the service, a build's stored defaults, an index searched from Python). No faiss import here."""

from __future__ import annotations

from collections.abc import Mapping

from tessera.errors import TesseraError

# faiss parameters that count lists, graph candidates or reranked rows: below 1, faiss asserts
# (nprobe) or silently returns fewer hits than asked (efSearch).
AT_LEAST_ONE = ("nprobe", "efSearch", "quantizer_efSearch", "k_factor")


def check_params(params: Mapping[str, float | str]) -> None:
    """Refuse a count parameter (`AT_LEAST_ONE`) below 1."""
    for name in AT_LEAST_ONE:
        value = params.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not value >= 1:
            why = f"search parameter '{name}' must be at least 1, not {value:g}"
            raise TesseraError(why, field="search_params")
