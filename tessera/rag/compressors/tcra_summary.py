"""TCRA-LLM's summarisation compression (Liu et al. 2023): each retrieved passage is summarised on
its own, then the summaries form the context.

The paper fine-tuned T5 for this; no T5 weights are available offline, so the summary is extractive
by default (the passage's gist and the sentences covering most of its words, `summaries.py`;
`fill` picks another selector) or the generator's (`summarizer="generator"`). Each passage gets
a share of the budget proportional to its tokens; the budget defaults to `ratio` (0.5) of the
plain context.
"""

from __future__ import annotations

from collections.abc import Sequence

from tessera.rag.compressors.base import Tools, budget_and_lengths, check_ratio, shares
from tessera.rag.compressors.summaries import DEFAULT_FILL, check_fill, check_summarizer, summarize
from tessera.rag.passages import Block, Passage


class TcraSummaryCompressor:
    name = "tcra-summary"

    def __init__(
        self, tools: Tools, ratio: float = 0.5, summarizer: str = "extractive", fill: str = DEFAULT_FILL
    ):
        check_summarizer(tools, summarizer)
        check_fill(fill)
        check_ratio("ratio", ratio)
        self.tools, self.ratio, self.summarizer, self.fill = tools, ratio, summarizer, fill

    def compress(self, question: str, passages: Sequence[Passage], budget: int | None) -> list[Block]:
        if not passages:
            return []
        budget, lengths = budget_and_lengths(self.tools, passages, budget, self.ratio)
        question_vector = self.tools.embed_queries([question])[0]
        return [
            Block(
                summarize(self.tools, question, question_vector, [p], share, self.summarizer, self.fill),
                (p.doc_id,),
                (position,),
            )
            for position, (p, share) in enumerate(zip(passages, shares(budget, lengths), strict=True))
        ]
