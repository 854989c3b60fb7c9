"""What the RAG stages pass along: retrieved passages in, context blocks out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tessera.data.pdf import page_of
from tessera.retrieval.hits import Hit


@dataclass(frozen=True, slots=True)
class Passage:
    """One retrieved document, or one passage of it (a chunked index's hit), as the prompt sees it."""

    doc_id: str
    text: str
    title: str | None = None
    score: float = 0.0
    rank: int = 0
    offsets: tuple[int, int] | None = None  # where `text` lies in the document (chunked indexes)
    page: int | None = None  # a PDF's page the passage starts on, for citations

    @classmethod
    def from_hit(cls, hit: Hit) -> Passage:
        """The hit's passage where it has one: a long document's best passage, not the whole
        document, goes into the prompt (what a reranker reads too, `rerank.base.hit_text`)."""
        text = document = hit.text or ""
        page = None
        if hit.offsets is not None and text:
            text = hit.passage if hit.passage is not None else text[hit.offsets[0] : hit.offsets[1]]
            page = page_of(document, hit.offsets[0])
        return cls(hit.doc_id, text, hit.title or None, hit.score, hit.rank, hit.offsets, page)

    @property
    def full_text(self) -> str:
        """Title and text, the title once (some corpora, Cranfield's among them, repeat it), laid
        out as the document is: what an uncompressed prompt holds (code and tables keep their
        lines)."""
        if not self.title or self.text.startswith(self.title):
            return self.text
        return f"{self.title}\n{self.text}"

    @property
    def flat_text(self) -> str:
        """`full_text` with its whitespace collapsed to single spaces, as every compressor writes
        its output (truncation too): so a compressor's budget counts words, and a compressor is
        compared with truncation at the same tokens of words, not of line breaks and indents
        (Cranfield's took 12% of its plain prompt's tokens)."""
        text, title = " ".join(self.text.split()), " ".join((self.title or "").split())
        if not title or text.startswith(title):
            return text
        return f"{title}\n{text}"


@dataclass(frozen=True, slots=True)
class Block:
    """One unit of prompt context and the documents it came from."""

    text: str
    sources: tuple[str, ...]
    # The positions (in the retrieved passages, best first) of the passages it holds, one a
    # source: two passages of one document (a chunked index) are told apart by them.
    passages: tuple[int, ...] = ()


def passage_blocks(passages: Sequence[Passage], flat: bool = False) -> list[Block]:
    """Uncompressed context: one block per passage, laid out as the document is, or `flat`."""
    return [
        Block(p.flat_text if flat else p.full_text, (p.doc_id,), (position,))
        for position, p in enumerate(passages)
    ]


def context_text(blocks: Sequence[Block]) -> str:
    """All context as one string (what retention is measured against)."""
    return "\n".join(block.text for block in blocks)


def cite_numbers(passages: Sequence[Passage], blocks: Sequence[Block]) -> list[int | None]:
    """For each passage, the number (from 1) of the block holding it, as the prompt numbers the
    blocks; None for one no block holds."""
    cites: list[int | None] = [None] * len(passages)
    for number, block in enumerate(blocks, 1):
        for position in block.passages:
            cites[position] = number
    return cites
