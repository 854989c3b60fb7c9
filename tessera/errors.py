"""One error family for everything a user can get wrong.

Every error names where the problem is (file, line, field) so the CLI can print one
actionable line instead of a traceback.
"""

from __future__ import annotations

import math
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
