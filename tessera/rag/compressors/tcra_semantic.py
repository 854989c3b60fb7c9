"""TCRA-LLM's semantic compression (Liu et al. 2023): delete the words that carry the least meaning.

Per passage, in rounds: every deletable word is scored by how far its removal moves its
sentence's embedding (1 - cosine between the sentence with and without it; sentence-level
variants keep the cost linear in passage length), and the lowest-scoring `step` share of the
remaining deletable words is deleted. A round is accepted only while the whole passage's
embedding keeps cosine >= `floor` to the original and the passage is above its share of the
budget (a round deletes no more words than hold the tokens still over budget, each word counted
in the budget's tokens); a round that crosses
the floor is retried with half as many deletions, down to one word. Without a budget the target
is `ratio` (0.75) of the passage's tokens; `ratio=None` deletes until the floor (or `max_rounds`).
Numbers and ids (any word with a digit, or an all-capital token such as "NACA") are never deleted;
in a passage written in capitals (most of its words, as in LISA's abstracts), capitals mark the
text, not an id, and only words with digits are kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from tessera.data.sentences import split_sentences
from tessera.rag.compressors.base import Tools, budget_and_lengths, check_option, check_ratio, shares
from tessera.rag.passages import Block, Passage

_NUMBER = re.compile(r"\d")
_CAPITALS = re.compile(r"^[^a-z]*[A-Z]{2,}[^a-z]*$")
SHOUTING = 0.5  # share of all-capital words above which capitals are the text's, not an id's


def is_protected(word: str, shouting: bool = False) -> bool:
    """Numbers and ids survive compression (in a `shouting` text, numbers only)."""
    return bool(_NUMBER.search(word)) or (not shouting and bool(_CAPITALS.search(word)))


def is_shouting(words: Sequence[str]) -> bool:
    """Whether most words of two letters or more are written in capitals."""
    lettered = [w for w in words if sum(c.isalpha() for c in w) >= 2]
    return bool(lettered) and sum(bool(_CAPITALS.search(w)) for w in lettered) > SHOUTING * len(lettered)


class TcraSemanticCompressor:
    name = "tcra-semantic"

    def __init__(
        self,
        tools: Tools,
        floor: float = 0.9,
        ratio: float | None = 0.75,
        step: float = 0.5,
        max_rounds: int = 4,
    ):
        check_option("floor", floor, 0 <= floor <= 1, "a cosine between 0 and 1")
        check_ratio("ratio", ratio)
        check_option("step", step, 0 < step < 1, "above 0 and below 1")
        check_option("max_rounds", max_rounds, max_rounds >= 1, "at least 1")
        self.tools, self.floor, self.ratio = tools, floor, ratio
        self.step, self.max_rounds = step, max_rounds

    def compress(self, question: str, passages: Sequence[Passage], budget: int | None) -> list[Block]:
        if not passages:
            return []
        budget, lengths = budget_and_lengths(self.tools, passages, budget, self.ratio)
        targets = [0] * len(passages) if budget is None else shares(budget, lengths)
        return [
            Block(self.compress_text(p.full_text, target), (p.doc_id,), (position,))
            for position, (p, target) in enumerate(zip(passages, targets, strict=True))
        ]

    def compress_text(self, text: str, target_tokens: int = 0) -> str:
        """Delete words until `target_tokens` or the similarity floor, whichever comes first."""
        sentences = [s.split() for s in split_sentences(text)]
        shouting = is_shouting([word for words in sentences for word in words])
        original = self.tools.embed_docs([text])[0]
        for _ in range(self.max_rounds):
            excess = self.tools.tokens.count(_join(sentences)) - target_tokens
            if excess <= 0:
                break
            ranked = self._least_meaningful(sentences, shouting)
            if not ranked:
                break
            count = max(1, min(int(len(ranked) * self.step), self._words_for(excess, sentences, ranked)))
            while count >= 1:
                candidate = _delete(sentences, ranked[:count])
                if float(self.tools.embed_docs([_join(candidate)])[0] @ original) >= self.floor:
                    sentences = candidate
                    break
                count //= 2
            if count < 1:  # even one word crosses the floor
                break
        return _join(sentences)

    def _words_for(self, excess: int, sentences: list[list[str]], ranked: list[tuple[int, int]]) -> int:
        """How many of the ranked words hold `excess` tokens: a word may be several tokens (most
        of an all-capital text's are), so deleting `excess` words would cut far below the target."""
        held = 0
        for count, (s, w) in enumerate(ranked, start=1):
            held += max(1, self.tools.tokens.count(" " + sentences[s][w]))
            if held >= excess:
                return count
        return len(ranked)

    def _least_meaningful(self, sentences: list[list[str]], shouting: bool) -> list[tuple[int, int]]:
        """Deletable (sentence, word) positions, least meaning lost first."""
        positions = [
            (s, w)
            for s, words in enumerate(sentences)
            if len(words) > 1
            for w, word in enumerate(words)
            if not is_protected(word, shouting)
        ]
        if not positions:
            return []
        variants = [" ".join(sentences[s][:w] + sentences[s][w + 1 :]) for s, w in positions]
        whole = self.tools.embed_docs([" ".join(words) for words in sentences])
        moved = 1.0 - np.einsum("ij,ij->i", self.tools.embed_docs(variants), whole[[s for s, _ in positions]])
        return [positions[i] for i in np.argsort(moved, kind="stable")]


def _delete(sentences: list[list[str]], positions: Sequence[tuple[int, int]]) -> list[list[str]]:
    drop = set(positions)
    return [[w for j, w in enumerate(words) if (i, j) not in drop] for i, words in enumerate(sentences)]


def _join(sentences: list[list[str]]) -> str:
    return " ".join(" ".join(words) for words in sentences if words)
