"""Lazy public APIs: a package names its exports, and importing it loads none of them (no torch)."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(package: str, api: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` that imports `api[name]`'s module on first use of `name`."""

    def __getattr__(name: str) -> Any:
        if name in api:
            return getattr(import_module(api[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
