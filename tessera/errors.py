"""One error family for everything a user can get wrong.

Every error names where the problem is (file, line, field) so the CLI can print one
actionable line instead of a traceback.
"""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Iterable, Sequence
from os import PathLike
from pathlib import Path


class TesseraError(Exception):
    """A user-facing failure: bad input, bad index, unknown id."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        return located(self.message, self.file, self.line, self.field)


def located(message: str, file: str | Path | None, line: int | None, field: str | None) -> str:
    """`FILE:LINE, field 'FIELD': message`, with whatever parts are known."""
    where = "" if file is None else str(file) + (f":{line}" if line is not None else "")
    prefix = ", ".join(p for p in (where, f"field '{field}'" if field else "") if p)
    return f"{prefix}: {message}" if prefix else message


def finite_number(name: str, value: object, field: str, error: type[TesseraError] | None = None) -> float:
    """`value` as a finite float, or `error` (TesseraError) naming `field`: the one check of a
    numeric option given as text (a spec item, `--param`, a JSON body)."""
    error = error or TesseraError
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise error(f"{name} must be a number ('{value}' is not a number)", field=field) from None
    if not math.isfinite(number):
        raise error(f"{name} must be finite, not {value}", field=field)
    return number


def whole_number(value: object, field: str) -> int:
    """`value` as an int: Python's or numpy's integers (a `k` computed with numpy), never a bool
    or a float; anything else a TesseraError naming `field`, not an error deep inside faiss."""
    if not isinstance(value, bool):
        try:
            return operator.index(value)  # type: ignore[arg-type]
        except TypeError:
            pass
    raise TesseraError(f"must be a whole number, got {type(value).__name__} {value!r}", field=field)


def string_list(value: object, field: str) -> list[str]:
    """A list of strings (ids, queries) from any iterable of them. A bare string is refused:
    iterated, it is a list of its letters (`delete("12")` deleted documents 1 and 2)."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        one = f"; for one, give [{value!r}]" if isinstance(value, str) else ""
        raise TesseraError(f"must be a list of strings, not a {type(value).__name__}{one}", field=field)
    items = list(value)
    for number, item in enumerate(items):
        if not isinstance(item, str):
            raise TesseraError(f"must be a string, got {type(item).__name__}", field=f"{field}[{number}]")
    return items


def path_list(value: object, field: str) -> list[str | PathLike]:
    """Paths given as a list, or one path alone (a str or a Path is one path, not its letters)."""
    if isinstance(value, str | PathLike):
        return [value]
    if isinstance(value, bytes) or not isinstance(value, Iterable):
        raise TesseraError(f"must be a path or a list of paths, not a {type(value).__name__}", field=field)
    items = list(value)
    for number, item in enumerate(items):
        if not isinstance(item, str | PathLike):
            raise TesseraError(f"must be a path, got {type(item).__name__}", field=f"{field}[{number}]")
    return items


def distinct_paths(paths: Sequence[str | PathLike], field: str) -> None:
    """Refuse one file or folder given twice, however spelled: the same run compared with itself,
    or an index fused with itself, is a mistake that would otherwise pass as a result."""
    first: dict[str, int] = {}
    for number, path in enumerate(paths):
        real = os.path.realpath(os.fspath(path))
        if real in first:
            why = f"'{os.fspath(path)}' is given twice (also as {field}[{first[real]}])"
            raise TesseraError(why, field=f"{field}[{number}]")
        first[real] = number


class CorpusError(TesseraError):
    """The corpus cannot be read: malformed record, missing field, duplicate id, bad encoding."""


class IndexFormatError(TesseraError):
    """An index directory is missing, corrupt, truncated or inconsistent with its manifest."""


class DatasetError(TesseraError):
    """An evaluation dataset id or folder cannot be resolved."""


class EncoderError(TesseraError):
    """An encoder spec cannot be resolved or does not match an index."""


class GeneratorError(TesseraError):
    """A generator spec cannot be resolved, or its LLM endpoint is down or answers an error."""


class TesseraWarning(UserWarning):
    """Something a user should know that does not stop the run (a pair source that gives
    nothing on this corpus); located like an error."""

    def __init__(self, message: str, *, file: str | Path | None = None, field: str | None = None) -> None:
        super().__init__(located(message, file, None, field))
