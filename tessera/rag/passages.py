"""What the RAG stages pass along: retrieved passages in, context blocks out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tessera.retrieval.hits import Hit


@dataclass(frozen=True, slots=True)
class Passage:
    """One retrieved document as the prompt sees it."""

    doc_id: str
    text: str
    title: str | None = None
    score: float = 0.0
    rank: int = 0

    @classmethod
    def from_hit(cls, hit: Hit) -> Passage:
        return cls(hit.doc_id, hit.text or "", hit.title or None, hit.score, hit.rank)

    @property
    def full_text(self) -> str:
        """Title and text, the title once (some corpora, Cranfield's among them, repeat it)."""
        if not self.title or self.text.startswith(self.title):
            return self.text
        return f"{self.title}\n{self.text}"


@dataclass(frozen=True, slots=True)
class Block:
    """One unit of prompt context and the documents it came from."""

    text: str
    sources: tuple[str, ...]


def passage_blocks(passages: Sequence[Passage]) -> list[Block]:
    """Uncompressed context: one block per passage."""
    return [Block(p.full_text, (p.doc_id,)) for p in passages]


def context_text(blocks: Sequence[Block]) -> str:
    """All context as one string (what retention is measured against)."""
    return "\n".join(block.text for block in blocks)
