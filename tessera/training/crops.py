"""Independent cropping (Contriever): two random spans of one document as query and positive.

After Izacard et al., "Unsupervised Dense Information Retrieval with Contrastive Learning"
(TMLR 2022). The two spans are drawn independently, so they may overlap, be disjoint or one
contain the other; each is 10-50% of the document's words. This needs no judgments, which
matters on collections like Cranfield with ~100 training queries.

Spans are cut on whitespace-separated words, not model tokens, so the pairs do not depend
on the model being trained. Every document has its own random stream, seeded by
(seed, document id): a document's crops do not change when others are added or reordered.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from tessera.data.document import Document

MIN_RATIO, MAX_RATIO = 0.1, 0.5
MIN_WORDS = 5  # a shorter span is rarely a useful query


@dataclass(frozen=True)
class Crop:
    """Two spans of the document `doc_id`."""

    query: str
    positive: str
    doc_id: str


def _span(words: list[str], rng: random.Random, min_ratio: float, max_ratio: float, min_words: int) -> str:
    length = max(min_words, round(rng.uniform(min_ratio, max_ratio) * len(words)))
    start = rng.randrange(len(words) - length + 1)
    return " ".join(words[start : start + length])


def crop_pairs(
    documents: Iterable[Document],
    seed: int = 0,
    per_document: int = 1,
    min_ratio: float = MIN_RATIO,
    max_ratio: float = MAX_RATIO,
    min_words: int = MIN_WORDS,
) -> list[Crop]:
    """`per_document` crops of every document with at least 2 x `min_words` words of text."""
    crops: list[Crop] = []
    for doc in documents:
        words = (doc.text or doc.title).split()
        if len(words) < 2 * min_words:
            continue
        rng = random.Random(f"{seed}:{doc.id}")  # str seeds hash with SHA-512: stable across runs
        for _ in range(per_document):
            query = _span(words, rng, min_ratio, max_ratio, min_words)
            positive = _span(words, rng, min_ratio, max_ratio, min_words)
            crops.append(Crop(query, positive, doc.id))
    return crops
