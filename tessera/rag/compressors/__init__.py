"""Context compressors, one module each, behind `base.Compressor`; `make_compressor` picks one."""

from __future__ import annotations

from typing import Any

from tessera.errors import TesseraError
from tessera.rag.compressors.base import Compressor, Tools

COMPRESSORS = ("none", "truncation", "crag", "tcra-summary", "tcra-semantic")


def make_compressor(name: str, tools: Tools, **options: Any) -> Compressor | None:
    """The compressor called `name` (None for "none"), with its own options."""
    if name == "none":
        return None
    if name == "truncation":
        from tessera.rag.compressors.truncation import TruncationCompressor

        return TruncationCompressor(tools, **options)
    if name == "crag":
        from tessera.rag.compressors.crag import CragCompressor

        return CragCompressor(tools, **options)
    if name == "tcra-summary":
        from tessera.rag.compressors.tcra_summary import TcraSummaryCompressor

        return TcraSummaryCompressor(tools, **options)
    if name == "tcra-semantic":
        from tessera.rag.compressors.tcra_semantic import TcraSemanticCompressor

        return TcraSemanticCompressor(tools, **options)
    raise TesseraError(
        f"unknown compressor '{name}' (expected one of {', '.join(COMPRESSORS)})", field="compress"
    )
