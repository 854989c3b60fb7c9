"""Context compressors, one module each, behind `base.Compressor`; `make_compressor` picks one."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from tessera.errors import TesseraError
from tessera.rag.compressors.base import Compressor, Tools

# name -> (module, class); "none" is no compressor
CLASSES = {
    "truncation": ("truncation", "TruncationCompressor"),
    "crag": ("crag", "CragCompressor"),
    "tcra-summary": ("tcra_summary", "TcraSummaryCompressor"),
    "tcra-semantic": ("tcra_semantic", "TcraSemanticCompressor"),
}
COMPRESSORS = ("none", *CLASSES)


def make_compressor(name: str, tools: Tools, **options: Any) -> Compressor | None:
    """The compressor called `name` (None for "none"), with its own options, checked against its
    constructor: an unknown option or a word where a number belongs names the option."""
    if name == "none":
        if options:
            raise TesseraError(f"compressor 'none' takes no option, got {', '.join(options)}", field="option")
        return None
    if name not in CLASSES:
        raise TesseraError(
            f"unknown compressor '{name}' (expected one of {', '.join(COMPRESSORS)})", field="compress"
        )
    module, cls_name = CLASSES[name]
    cls = getattr(importlib.import_module(f"tessera.rag.compressors.{module}"), cls_name)
    return cls(tools, **_checked(name, cls, options))


def _checked(name: str, cls: type, options: dict[str, Any]) -> dict[str, Any]:
    parameters = {
        key: parameter for key, parameter in inspect.signature(cls).parameters.items() if key != "tools"
    }
    checked = {}
    for key, value in options.items():
        if key not in parameters:
            takes = f"it takes {', '.join(parameters)}" if parameters else "it takes none"
            raise TesseraError(f"compressor '{name}' has no option '{key}' ({takes})", field="option")
        kinds = str(parameters[key].annotation)  # "float", "int | None", "str" (postponed annotations)
        numeric = ("int" in kinds or "float" in kinds) and "str" not in kinds
        whole = numeric and "float" not in kinds
        wanted = None
        if numeric and (isinstance(value, bool) or not isinstance(value, (int, float))):
            wanted = "a number"
        elif whole and not float(value).is_integer():
            wanted = "a whole number"
        elif not numeric and "str" in kinds and not isinstance(value, str):
            wanted = "a word"
        if wanted:
            raise TesseraError(f"option '{key}' of '{name}' takes {wanted}, got {value!r}", field="option")
        checked[key] = int(value) if whole else value
    return checked
