"""The honest baseline: plain RAG cut to a token budget, best passages first, its whitespace
collapsed as every compressor's is (so a compressor is compared with it at the same words)."""

from __future__ import annotations

from collections.abc import Sequence

from tessera.rag.compressors.base import Tools
from tessera.rag.passages import Block, Passage, passage_blocks


class TruncationCompressor:
    """Whole passages in rank order while they fit, then the next one cut to the remaining tokens."""

    name = "truncation"

    def __init__(self, tools: Tools):
        self.tools = tools

    def compress(self, question: str, passages: Sequence[Passage], budget: int | None) -> list[Block]:
        blocks = passage_blocks(passages, flat=True)
        if budget is None:
            return blocks
        kept: list = []
        left = budget
        for block in blocks:
            size = self.tools.tokens.count(block.text)
            if size <= left:
                kept.append(block)
                left -= size
                continue
            if left > 0:
                kept.append(
                    Block(self.tools.tokens.truncate(block.text, left), block.sources, block.passages)
                )
            break
        return kept
