"""A long document's best window for the prompt, when the index did not cut it into passages.

A BM25 index, or a dense index built without `--chunk`, retrieves whole documents, and one
report of fifty pages would fill the generator's window alone. So the passages must fit the
context: the generator's window less what the instructions, question and answer need. When
they do not, each is given at most the level that makes them fit (water-filling: short ones
whole, the longest all cut to one level), and a longer document is represented by its window
of that many tokens that holds the most of the question's content words, each weighted by how
few of the document's windows hold it (an IDF within the document: "aircraft" in every window
of a report says less than "aeroelastic" in one); windows of whole words overlap by half, and
repeats of those words break ties (the window holding more of the passage they open). Ranking
windows by their best 128-word block under MiniLM was tried (docs/results.md, section 24): no
steady gain, at 13-33x the time, so the lexical choice stands. The passage keeps its offsets (and its PDF
page), so the sources say where in the document it is. Passages that fit are left whole, so
collections of abstracts see no change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from tessera.data.pdf import page_of
from tessera.rag.compressors.base import Tools
from tessera.rag.passages import Block, Passage
from tessera.rag.prompt import render_context

CONTEXT_TOKENS = 8192  # the bundled SmolLM2's window; a tokenizer that states its own is believed
RESERVED_TOKENS = 1024  # instructions, question and a 256-token answer (block headers: `fit_passages`)
_WORD = re.compile(r"\S+")
_TERM = re.compile(r"[a-z0-9]+")


def context_window(tools: Tools) -> int:
    """The generator's window in tokens (its tokenizer's own figure, else SmolLM2's)."""
    window = getattr(tools.tokens.tokenizer, "model_max_length", CONTEXT_TOKENS)
    return window if 0 < window < 1_000_000 else CONTEXT_TOKENS  # HF's "no limit" sentinel


def context_budget(tools: Tools) -> int:
    """Tokens the passages may take together."""
    return max(256, context_window(tools) - RESERVED_TOKENS)


def water_level(lengths: Sequence[int], budget: int) -> int | None:
    """The largest cap c with sum(min(length, c)) <= budget, or None when all fit whole."""
    if sum(lengths) <= budget:
        return None
    left, ordered = budget, sorted(lengths)
    for position, length in enumerate(ordered):
        share = left // (len(ordered) - position)
        if length > share:
            return max(1, share)
        left -= length
    return None


def _stem(word: str) -> str:
    return word[:5]  # a crude stem: "slipstreams" meets "slipstream", "heated" meets "heating"


def _question_terms(question: str) -> set[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return {_stem(term) for term in _TERM.findall(question.lower()) if term not in ENGLISH_STOP_WORDS}


def best_window(passage: Passage, question: str, tools: Tools, share: int) -> Passage:
    """`passage` cut to its window of about `share` tokens that holds the question's rarer words."""
    text = passage.text
    words = list(_WORD.finditer(text))
    size = max(1, int(len(words) * share / max(tools.tokens.count(text), 1)))
    starts = list(range(0, max(1, len(words) - size), max(1, size // 2)))
    if starts[-1] + size < len(words):
        starts.append(len(words) - size)
    stems = [_stem(m.group().lower().strip(".,;:()[]\"'")) for m in words]
    ends = [min(s + size, len(words)) for s in starts]
    scores = np.zeros(len(starts))
    for term in _question_terms(question):
        counts = np.cumsum([0] + [stem == term for stem in stems])
        held = np.array([counts[e] - counts[s] for s, e in zip(starts, ends, strict=True)])
        if held.any():  # a word every window holds tells them apart as little as one none holds
            weight = np.log(1 + len(starts) / (held > 0).sum())
            scores += weight * ((held > 0) + 1e-3 * held)  # repeats break ties: the fuller window
    best = starts[int(np.argmax(scores))]  # the first on a tie
    first, last = words[best].start(), words[min(best + size, len(words)) - 1].end()
    window = tools.tokens.truncate(text[first:last], share)
    start, end = first, first + len(window)
    if passage.offsets is not None:  # a chunked index's passage, longer than its share: document terms
        base = passage.offsets[0]
        return replace(passage, text=window, offsets=(base + start, base + end))
    return replace(passage, text=window, offsets=(start, end), page=page_of(text, start))


def fit_passages(passages: Sequence[Passage], question: str, tools: Tools, spent: int = 0) -> list[Passage]:
    """The passages within the context budget, less `spent` (a conversation's earlier turns):
    those over the water level cut to their best window. What each block adds around its text
    (its `[n] (doc ID)` header and title) comes out of the budget first: the headers and titles
    of 200 Cranfield passages took about 5,000 tokens, and the prompt reached 9,828 of the
    generator's 8,192."""
    lengths = [tools.tokens.count(passage.text) for passage in passages]
    # Each block's header and title (a cut passage carries its title even where the whole text
    # began with it), and a line break after the title.
    around = tools.tokens.count(render_context([Block(p.title or "", (p.doc_id,)) for p in passages]))
    around += len(passages)
    level = water_level(lengths, max(len(passages), context_budget(tools) - around - spent))
    if level is None:
        return list(passages)
    return [
        best_window(passage, question, tools, level) if length > level else passage
        for passage, length in zip(passages, lengths, strict=True)
    ]
