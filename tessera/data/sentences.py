"""Sentence splitting shared by training sources (inverse cloze) and RAG compression."""

from __future__ import annotations

import re

# A sentence ends at . ! ? (or a blank line) followed by space; Cranfield's " ." style included.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")


def split_sentences(text: str) -> list[str]:
    """Sentences of a text, whitespace-normalised, empty ones dropped."""
    return [s for s in (" ".join(part.split()) for part in _SENTENCE_END.split(text)) if s]
