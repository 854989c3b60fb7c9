"""Summaries of a group of passages within a token budget, for CRAG (one per cluster) and
TCRA's summarisation step (one per passage).

`extractive` (default) stands in for the papers' abstractive models (TCRA fine-tuned T5; no such
weights are available offline). Every passage first gets one sentence, so no passage vanishes
from the context; the rest of the budget is filled by one of three selectors (`fill`):
- `coverage` (default), concept coverage in the manner of Lin & Bilmes (2011): the first
  sentence of a passage is its gist, the one nearest the whole passage's embedding; then each
  passage's words (lower-cased, English stopwords out) weigh by their frequency in it times their
  rarity among the passages summarised together, normalised per passage; a set of sentences
  scores the sum over passages of the square root of the weight it covers (a chosen sentence
  covers a word for every passage that has it), so a passage with little covered gains most, and
  sentences are added greedily by gain per token while they fit.
- `score`: a sentence scores by cosine to the group's centroid (what the group is about) plus
  cosine to the question (what the user asked); each passage's best first, then the highest
  scores of any passage, near-duplicates (cosine > `redundancy` to a chosen one) skipped.
- `balanced`: as `score`, but each passage first takes its next-best sentences up to its share of
  the budget (split in proportion to the passages' tokens).
On four collections `coverage` kept more of the relevant passages' terms and of their gist than
`score` (the default until then); `balanced` kept more terms and less gist (docs/results.md
section 5). Chosen sentences keep their passages' order and their order within each passage.
`generator` asks the RAG generator for the summary and cuts it to the budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tessera.data.sentences import split_sentences
from tessera.errors import TesseraError
from tessera.rag.compressors.base import Tools, shares
from tessera.rag.passages import Passage

SUMMARIZERS = ("extractive", "generator")
FILLS = ("balanced", "coverage", "score")
DEFAULT_FILL = "coverage"


@dataclass(frozen=True, slots=True)
class Sentence:
    passage: int  # position of its passage in the group
    position: int  # position within the passage
    text: str


def group_sentences(passages: Sequence[Passage]) -> list[Sentence]:
    return [
        Sentence(index, position, text)
        for index, passage in enumerate(passages)
        for position, text in enumerate(split_sentences(passage.full_text))  # blank lines end sentences
    ]


def extractive_summary(
    tools: Tools,
    question_vector: np.ndarray,
    passages: Sequence[Passage],
    budget: int,
    redundancy: float = 0.9,
    fill: str = DEFAULT_FILL,
    passage_vectors: np.ndarray | None = None,
) -> str:
    """At most `budget` tokens of the passages' own sentences (one sentence cut if nothing fits).
    `passage_vectors`: the passages' embeddings, when the caller has them (CRAG clustered by them)."""
    check_fill(fill)
    sentences = group_sentences(passages)
    if not sentences:
        return ""
    vectors = tools.embed_docs([s.text for s in sentences])
    centroid = vectors.mean(axis=0)
    centroid /= np.linalg.norm(centroid) or 1.0
    scores = vectors @ centroid + vectors @ question_vector
    lengths = [tools.tokens.count(s.text) + 1 for s in sentences]  # +1: the joining space
    owners = [s.passage for s in sentences]
    if fill == "coverage":  # each passage's own gist first: its sentence nearest the whole passage
        if passage_vectors is None:
            passage_vectors = tools.embed_docs([p.flat_text for p in passages])
        first_by = np.einsum("ij,ij->i", vectors, passage_vectors[owners])
    else:
        first_by = scores

    best_per_passage: dict[int, int] = {}
    for i, owner in enumerate(owners):
        if owner not in best_per_passage or first_by[i] > first_by[best_per_passage[owner]]:
            best_per_passage[owner] = i
    first = set(best_per_passage.values())
    firsts = sorted(first, key=lambda i: -scores[i])
    rest = [i for i in np.argsort(-scores, kind="stable") if i not in first]

    chosen: list[int] = []
    used = 0
    spent = [0] * len(passages)
    quota = shares(budget, np.bincount(owners, weights=lengths, minlength=len(passages)).tolist())
    rounds = [(firsts, None), (rest, quota)] if fill == "balanced" else [(firsts, None)]
    if fill != "coverage":
        rounds.append((rest, None))
    for order, limit in rounds:
        for i in order:
            owner = owners[i]
            if i in chosen or used + lengths[i] > budget:
                continue
            if limit is not None and spent[owner] + lengths[i] > limit[owner]:
                continue
            if chosen and i not in first and float(np.max(vectors[chosen] @ vectors[i])) > redundancy:
                continue
            chosen.append(i)
            used += lengths[i]
            spent[owner] += lengths[i]
    if fill == "coverage":
        chosen = coverage_choice(sentences, lengths, len(passages), budget, chosen)
    if not chosen:  # even the best sentence is longer than the budget
        return tools.tokens.truncate(sentences[firsts[0]].text, budget)
    chosen.sort(key=lambda i: (sentences[i].passage, sentences[i].position))
    return " ".join(sentences[i].text for i in chosen)


def coverage_choice(
    sentences: Sequence[Sentence],
    lengths: Sequence[int],
    passages: int,
    budget: int,
    start: Sequence[int] = (),
) -> list[int]:
    """`start`, then sentences added greedily by the gain in the sum over passages of sqrt(covered
    word weight) per token, while they fit the budget."""
    from sklearn.feature_extraction.text import CountVectorizer

    try:
        counts = CountVectorizer(stop_words="english").fit_transform([s.text for s in sentences])
    except ValueError:  # nothing but stopwords
        return list(start)
    owners = np.array([s.passage for s in sentences])
    per_passage = np.vstack([np.asarray(counts[owners == p].sum(axis=0)).ravel() for p in range(passages)])
    frequency = (per_passage > 0).sum(axis=0)
    weights = per_passage * (np.log((passages + 1) / (frequency + 1)) + 1.0)
    weights /= weights.sum(axis=1, keepdims=True).clip(min=1e-12)
    has_word = (counts > 0).toarray()
    chosen = list(start)
    used = sum(lengths[i] for i in chosen)
    covered = has_word[chosen].any(axis=0) if chosen else np.zeros(counts.shape[1], dtype=bool)
    mass = weights[:, covered].sum(axis=1)
    cost = np.asarray(lengths, dtype=np.float64)
    while True:
        new_words = has_word & ~covered
        gains = (
            np.sqrt(mass[None, :] + new_words.astype(np.float64) @ weights.T).sum(axis=1)
            - np.sqrt(mass).sum()
        )
        gains[chosen] = -1.0
        gains[cost + used > budget] = -1.0
        best = int(np.argmax(gains / cost))
        if gains[best] <= 0:
            return chosen
        chosen.append(best)
        used += lengths[best]
        covered |= has_word[best]
        mass = weights[:, covered].sum(axis=1)


def generated_summary(tools: Tools, question: str, passages: Sequence[Passage], budget: int) -> str:
    """The generator's summary, cut to the budget."""
    joined = "\n\n".join(p.flat_text for p in passages)
    words = max(1, int(budget * 0.7))  # English runs about 1.3 tokens per word
    messages = [
        {
            "role": "user",
            "content": f"Summarise these passages in at most {words} words, keeping every fact that bears "
            f"on the question.\n\nQuestion: {question}\n\n{joined}",
        }
    ]
    return tools.tokens.truncate(tools.generator.generate(messages, max_new_tokens=budget).strip(), budget)


def check_summarizer(tools: Tools, summarizer: str) -> None:
    if summarizer not in SUMMARIZERS:
        raise TesseraError(
            f"unknown summarizer '{summarizer}' ({', '.join(SUMMARIZERS)})", field="summarizer"
        )
    if summarizer == "generator" and tools.generator is None:
        raise TesseraError(
            "summarizer 'generator' needs a generator (--generator local|URL)", field="generator"
        )


def check_fill(fill: str) -> None:
    if fill not in FILLS:
        raise TesseraError(f"unknown fill '{fill}' ({', '.join(FILLS)})", field="fill")


def summarize(
    tools: Tools,
    question: str,
    question_vector: np.ndarray,
    passages: Sequence[Passage],
    budget: int,
    how: str,
    fill: str = DEFAULT_FILL,
    passage_vectors: np.ndarray | None = None,
) -> str:
    """One summary of `passages` in at most `budget` tokens, by the `how` summarizer."""
    if how == "generator":
        return generated_summary(tools, question, passages, budget)
    return extractive_summary(
        tools, question_vector, passages, budget, fill=fill, passage_vectors=passage_vectors
    )
