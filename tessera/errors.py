"""One error family for everything a user can get wrong.

Every error names where the problem is (file, line, field) so the CLI can print one
actionable line instead of a traceback.
"""

from __future__ import annotations

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
        where = ""
        if self.file is not None:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
        parts = [p for p in (where, f"field '{self.field}'" if self.field else "") if p]
        prefix = ", ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


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

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(str(TesseraError(message, file=file, line=line, field=field)))
