"""Inverse cloze (ICT): one sentence of a document as the query, the rest of it as the positive.

After Lee et al., "Latent Retrieval for Weakly Supervised Open Domain Question Answering"
(ACL 2019). Unlike Contriever's crops, the query is a whole sentence and the positive never
contains it: the encoder must match a statement to the context around it, not find a copied
span. Lee et al. keep the sentence in 10% of the positives; here it is always removed (and a
sentence that would still appear elsewhere in the positive, e.g. in the title, is not used),
so no pair can be solved by string overlap.

Every document has its own seeded random stream, like the crops: adding documents changes no
other document's pair.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from tessera.data.document import Document
from tessera.data.sentences import split_sentences
from tessera.training.pairs import title_body

MIN_SENTENCE_WORDS = 5  # shorter sentences ("see fig. 2 .") are no query
MIN_SENTENCES = 3  # the positive keeps at least two sentences of context


@dataclass(frozen=True)
class ClozePair:
    query: str
    positive: str
    doc_id: str


def _body(doc: Document) -> str:
    """The document's text without a repeated title (Cranfield bodies start with it)."""
    split = title_body(doc)
    return split[1] if split else doc.text


def cloze_pairs(documents: Iterable[Document], seed: int = 0) -> list[ClozePair]:
    """One (sentence, title + other sentences) pair per document with enough sentences."""
    pairs: list[ClozePair] = []
    for doc in documents:
        sentences = split_sentences(_body(doc))
        if len(sentences) < MIN_SENTENCES:
            continue
        title = " ".join(doc.title.split())
        rng = random.Random(f"{seed}:{doc.id}")  # str seeds hash with SHA-512: stable across runs
        candidates = [i for i, s in enumerate(sentences) if len(s.split()) >= MIN_SENTENCE_WORDS]
        rng.shuffle(candidates)
        for i in candidates:
            query = sentences[i]
            rest = " ".join(s for s in sentences if s != query)  # a repeated sentence goes everywhere
            positive = f"{title}\n{rest}" if title else rest
            if query not in positive:
                pairs.append(ClozePair(query, positive, doc.id))
                break
    return pairs
