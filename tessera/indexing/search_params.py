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


def bebr_default_mode(bits: int) -> str:
    """The search a BEBR index of `bits` bits a dimension gets unless told: ADC at one bit, SDC
    above (measured in indexing/binary_backend.py's docstring)."""
    return "adc" if bits == 1 else "sdc"


def effective_params(backend: str, factory: str | None, stored: Mapping[str, float | str]) -> dict:
    """The search parameters an index is searched with unless told: its stored ones, and for
    BEBR the mode its bits default to (`tessera info` shows what a search will do)."""
    if backend == "bebr" and "mode" not in stored and factory:
        return {"mode": bebr_default_mode(int(factory.partition(":")[2])), **stored}
    return dict(stored)
