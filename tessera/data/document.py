"""The one record every reader yields and every index stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    text: str
    title: str = ""
    # Where the record came from, so later stages (duplicate ids, encoding) can name it.
    file: str | None = None
    line: int | None = None
    # Flat JSON fields that filters select by (data/metadata.py); empty when the corpus has none.
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)
    # A folder file's size and modification time when it was read (data/files.py: `file_stamp`),
    # so a sync can pass over files that have not changed without reading them again.
    stamp: str | None = None

    @property
    def contents(self) -> str:
        """What encoders see: title and body, the way BEIR and pyserini users index them."""
        return f"{self.title} {self.text}" if self.title else self.text
