"""A long document's best window for the prompt, when the index did not cut it into passages.

A BM25 index, or a dense index built without `--chunk`, retrieves whole documents, and one
report of fifty pages would fill the generator's window alone. So the passages must fit the
context: the generator's window less what the instructions, question and answer need. When
they do not, each is given at most the level that makes them fit (water-filling: short ones
whole, the longest all cut to one level), and a longer document is represented by its window
of that many tokens that best matches the question: candidate windows of whole words,
overlapping by half, are ranked by how many of the question's content words they hold (cheap,
over every window), and the best few of those by their best block's cosine with the question
(blocks of 128 words, which the tools' sentence encoder, the one compression uses, reads
whole; a window is as good as its best block, as MaxP scores a document). The passage keeps its offsets
(and its PDF page), so the sources say where in the document it is. Passages that fit are left
whole, so collections of abstracts see no change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from tessera.data.pdf import page_of
from tessera.rag.compressors.base import Tools
from tessera.rag.passages import Passage

CONTEXT_TOKENS = 8192  # the bundled SmolLM2's window; a tokenizer that states its own is believed
RESERVED_TOKENS = 1024  # instructions, question, block headers and a 256-token answer
SHORTLIST = 8  # windows per long document whose blocks are embedded
BLOCK_WORDS = 128  # words the sentence encoder reads at once (MiniLM's 256 wordpieces hold ~180)
_WORD = re.compile(r"\S+")
_TERM = re.compile(r"[a-z0-9]+")


def context_budget(tools: Tools) -> int:
    """Tokens the passages may take together."""
    window = getattr(tools.tokens.tokenizer, "model_max_length", CONTEXT_TOKENS)
    window = window if 0 < window < 1_000_000 else CONTEXT_TOKENS  # HF's "no limit" sentinel
    return max(256, window - RESERVED_TOKENS)


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
    return word[:5]  # a crude stem: enough to shortlist windows; the embedding decides


def _question_terms(question: str) -> set[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return {_stem(term) for term in _TERM.findall(question.lower()) if term not in ENGLISH_STOP_WORDS}


def best_window(passage: Passage, question: str, tools: Tools, share: int) -> Passage:
    """`passage` cut to its window of about `share` tokens that best matches `question`."""
    text = passage.text
    words = list(_WORD.finditer(text))
    total = tools.tokens.count(text)
    size = max(1, int(len(words) * share / max(total, 1)))
    starts = list(range(0, max(1, len(words) - size), max(1, size // 2)))
    if starts[-1] + size < len(words):
        starts.append(len(words) - size)
    terms = _question_terms(question)
    hits = np.cumsum([0] + [_stem(m.group().lower().strip(".,;:()[]\"'")) in terms for m in words])
    scores = [hits[min(start + size, len(words))] - hits[start] for start in starts]
    shortlist = [starts[i] for i in np.argsort(scores, kind="stable")[::-1][:SHORTLIST]]
    # A window scores as its best block (MaxP): the encoder reads BLOCK_WORDS at a time, not a
    # whole window, so each block is embedded once and shared by the windows that hold it.
    blocks = sorted({b for s in shortlist for b in range(s, min(s + size, len(words)), BLOCK_WORDS)})
    spans = [(words[b].start(), words[min(b + BLOCK_WORDS, len(words)) - 1].end()) for b in blocks]
    cosine = dict(
        zip(
            blocks,
            tools.embed_docs([text[a:z] for a, z in spans]) @ tools.embed_queries([question])[0],
            strict=True,
        )
    )
    best = max(
        shortlist, key=lambda s: max(cosine[b] for b in range(s, min(s + size, len(words)), BLOCK_WORDS))
    )
    first, last = words[best].start(), words[min(best + size, len(words)) - 1].end()
    window = tools.tokens.truncate(text[first:last], share)
    start, end = first, first + len(window)
    if passage.offsets is not None:  # a chunked index's passage, longer than its share: document terms
        base = passage.offsets[0]
        return replace(passage, text=window, offsets=(base + start, base + end))
    return replace(passage, text=window, offsets=(start, end), page=page_of(text, start))


def fit_passages(passages: Sequence[Passage], question: str, tools: Tools) -> list[Passage]:
    """The passages within the context budget: those over the water level cut to their best window."""
    lengths = [tools.tokens.count(passage.text) for passage in passages]
    level = water_level(lengths, context_budget(tools))
    if level is None:
        return list(passages)
    return [
        best_window(passage, question, tools, level) if length > level else passage
        for passage, length in zip(passages, lengths, strict=True)
    ]
