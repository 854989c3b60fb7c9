"""What a search returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Hit:
    doc_id: str
    score: float
    rank: int
    title: str | None = None
    text: str | None = None
