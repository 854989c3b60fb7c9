"""What a search returns."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class Hit:
    doc_id: str
    score: float
    rank: int
    title: str | None = None
    text: str | None = None
    # Chunked indexes: the best passage's character offsets in `text`, and (with text) its text.
    offsets: tuple[int, int] | None = None
    passage: str | None = None
    metadata: dict[str, Any] | None = None  # fetched with the text

    def without_text(self) -> Hit:
        """The hit as a run holds it: id, score, rank (and offsets), no title, text or metadata."""
        return replace(self, title=None, text=None, passage=None, metadata=None)
